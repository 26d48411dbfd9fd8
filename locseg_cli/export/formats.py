"""The export formats: how a model is written as each, and how the written file is run back.

ONNX goes through torch's `torch.export`-based exporter (`dynamo=True`, the default since torch 2.9;
the TorchScript-based one is deprecated). It needs `onnxscript` (and `onnx`) at export time, both pure
PyPI packages of the `export` extra; nothing is fetched when it runs. TorchScript is a `torch.jit.trace`
of the model. Both record the model while `models.layout.tracing()` is true, so every layer runs its
plain, default-layout form (no custom autograd function, no oneDNN call). Batch is dynamic, the patch
size fixed (docs/export.md says why). Heavy imports happen inside the functions.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import LocsegError
from .card import INPUT_NAMES, OUTPUT_NAME

_EXTRA_HINT = "install the export extra: pip install 'locseg[export]'"


@dataclass(frozen=True)
class Format:
    """One export format: its file name, writer, and a runner that executes the written file."""

    file: str
    write: Callable[[torch.nn.Module, tuple[torch.Tensor, torch.Tensor], Path], dict[str, str]]
    run: Callable[[Path, np.ndarray, np.ndarray], np.ndarray]
    runtime: Callable[[], str]


def write_onnx(model: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> dict[str, str]:
    """One self-contained .onnx file (weights inside), dynamic batch; returns what made it (for the card)."""
    require_onnx()
    import onnx

    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), _quiet_exporter():
        torch.onnx.export(model, example, str(path), dynamo=True, external_data=False, verbose=False,
                          input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                          dynamic_shapes={name: {0: batch} for name in INPUT_NAMES})
    opset = next((o.version for o in onnx.load(str(path), load_external_data=False).opset_import
                  if o.domain in ("", "ai.onnx")), None)
    return {"exporter": "torch.onnx.export(dynamo=True)", "onnx_opset": str(opset), "onnx": onnx.__version__}


def write_torchscript(model: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor],
                      path: Path) -> dict[str, str]:
    """A traced TorchScript module (`torch.jit.load` in Python, `torch::jit::load` in C++)."""
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns that shape checks become constants: the patch size is fixed on purpose
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, str(path))
    return {"exporter": "torch.jit.trace"}


def run_onnx(path: Path, image: np.ndarray, location: np.ndarray) -> np.ndarray:
    """Logits of the .onnx file under onnxruntime's CPU provider."""
    require_onnx()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAMES[0]: image, INPUT_NAMES[1]: location})[0]


def run_torchscript(path: Path, image: np.ndarray, location: np.ndarray) -> np.ndarray:
    """Logits of the TorchScript file, loaded as another tool would (no locseg classes involved)."""
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(torch.from_numpy(image), torch.from_numpy(location)).numpy()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the ONNX exporter's progress logs and library warnings (skipped torchvision ops, pytree
    deprecations): a user sees locseg's one line; the check against PyTorch is what vouches for the file."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def require_onnx() -> None:
    """One line naming the extra when the ONNX packages are missing (they are optional)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise LocsegError(f"--format onnx needs {', '.join(missing)}: {_EXTRA_HINT}")


def _onnxruntime_version() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def _torch_version() -> str:
    return f"torch {torch.__version__}"


FORMATS: dict[str, Format] = {
    "onnx": Format("model.onnx", write_onnx, run_onnx, _onnxruntime_version),
    "torchscript": Format("model.pt", write_torchscript, run_torchscript, _torch_version),
}
