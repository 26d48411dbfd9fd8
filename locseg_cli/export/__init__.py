"""Export a trained run's network (ONNX or TorchScript) with a model card another tool can run it from.

`export_run(run, out, "onnx")` writes `out/model.onnx` and `out/card.json`; docs/export.md has the
card's fields and an onnxruntime example. torch and the ONNX packages load only when exporting.
"""

from ..lazy import lazy_exports
from .card import CARD_FILE, FORMAT_NAMES

__getattr__ = lazy_exports(__name__, {"export_run": ".run", "ExportResult": ".run", "FORMATS": ".formats"})
__all__ = ["CARD_FILE", "FORMAT_NAMES", "ExportResult", "FORMATS", "export_run"]
