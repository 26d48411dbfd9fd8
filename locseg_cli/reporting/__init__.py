"""`locseg report`: the paper's tables and figures, every number read from the stages' output files."""

from ..lazy import lazy_exports
from .config import ReportConfig

__getattr__ = lazy_exports(__name__, {"report": ".run", "ReportResult": ".run", "collect": ".collect",
                                      "Collection": ".collect", "markdown_to_html": ".render"})
__all__ = ["ReportConfig", "report", "ReportResult", "collect", "Collection", "markdown_to_html"]
