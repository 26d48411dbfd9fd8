"""The preprocessing plan: how raw images become the network's input, as one typed object.

`preprocess` writes it (its config in the manifest's `config`, the values it measured in `extra`);
`train` embeds it in each run's manifest (`extra.preprocess`); inference, shift-eval, atlas and
report read it back through `PreprocessPlan.of(manifest)`, whichever of the two manifests they hold.
No stage reads another stage's manifest dictionaries for these values. The JSON is the one older
runs carry, so their manifests stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import resolve_config
from ..errors import LocsegError
from ..io.manifest import Manifest
from ..io.nifti import CANONICAL_AXCODES
from .config import PreprocessConfig

# the measured values a run carries (the preprocess manifest's `extra` has more: splits, sizes, ...)
RUN_KEYS = ("spacing", "intensity", "labels", "dataset", "bpr_scoring")


@dataclass
class PreprocessPlan:
    """The preprocess config and what `preprocess` measured on the dataset, typed."""

    config: PreprocessConfig
    spacing: tuple[float, float, float]  # target (z, y, x) mm actually used (fixed or dataset median)
    labels: dict[str, str]  # label value -> name, the kept classes (background included)
    intensity: dict[str, float] | None = None  # nnU-Net's CT fingerprint (z-score normalisation only)
    dataset: dict[str, Any] = field(default_factory=dict)  # layout, name, modality of the raw dataset
    splits: list[dict[str, list[str]]] = field(default_factory=list)  # cross-validation folds (preprocess only)
    median_shape: tuple[int, ...] | None = None  # median preprocessed volume shape (preprocess only: PtVC)
    config_json: dict[str, Any] = field(default_factory=dict)  # the config as written (kept verbatim)
    # how the training cases were scored, {"model": path, "config": `bpr score` options} (None: volume or
    # truth location, or imported bpreg scores): what lets `infer` score a new scan itself
    bpr_scoring: dict[str, Any] | None = None

    @property
    def orientation(self) -> tuple[str, ...]:
        """The array axes' orientation every case is turned to (nibabel axis codes)."""
        return tuple(CANONICAL_AXCODES)

    @property
    def location(self) -> str:
        """The axial location source: volume coordinates, BPR scores or the cohort's true position."""
        return self.config.location

    @property
    def normalization(self) -> str:
        return self.config.normalization

    @property
    def dataset_layout(self) -> str | None:
        """The raw layout the config named, to open new images with (None: detect it)."""
        layout = self.config.dataset
        return layout if layout and layout != "images" else None

    @property
    def dataset_name(self) -> str:
        return str(self.dataset.get("name") or "dataset")

    @classmethod
    def from_values(cls, config_json: dict[str, Any], values: dict[str, Any], where: object = None) -> PreprocessPlan:
        try:
            spacing = tuple(float(s) for s in values["spacing"])
            labels = {str(k): str(v) for k, v in values["labels"].items()}
        except (KeyError, TypeError, AttributeError, ValueError):
            raise LocsegError("no readable preprocessing plan (spacing and labels) in this manifest", where) from None
        return cls(resolve_config(PreprocessConfig, base=config_json), spacing, labels, values.get("intensity"),
                   dict(values.get("dataset") or {}), list(values.get("splits") or []),
                   tuple(int(n) for n in values["median_shape"]) if values.get("median_shape") else None,
                   dict(config_json), values.get("bpr_scoring"))

    @classmethod
    def of(cls, manifest: Manifest, where: object = None) -> PreprocessPlan:
        """The plan of a `preprocess` output or of a `train` run (embedded)."""
        if manifest.stage == "preprocess":
            return cls.from_values(manifest.config, manifest.extra or {}, where)
        embedded = (manifest.extra or {}).get("preprocess")
        if not isinstance(embedded, dict) or not isinstance(embedded.get("config"), dict):
            raise LocsegError(f"this `{manifest.stage}` output carries no preprocessing plan", where)
        return cls.from_values(embedded["config"], embedded.get("extra") or {}, where)

    def fold(self, fold: int) -> tuple[list[str], list[str]]:
        """(train ids, validation ids) of cross-validation fold `fold` (an error if there is none)."""
        if not 0 <= fold < len(self.splits):
            raise IndexError(fold)
        return list(self.splits[fold]["train"]), list(self.splits[fold]["val"])

    def values(self) -> dict[str, Any]:
        """The measured values as `preprocess` writes them into its manifest's `extra`."""
        return {"labels": dict(self.labels), "spacing": list(self.spacing), "splits": list(self.splits),
                "intensity": self.intensity, "dataset": dict(self.dataset), "bpr_scoring": self.bpr_scoring}

    def run_json(self) -> dict[str, Any]:
        """What a run embeds in its manifest (`extra.preprocess`)."""
        values = self.values()
        return {"config": self.config_json, "extra": {k: values[k] for k in RUN_KEYS}}
