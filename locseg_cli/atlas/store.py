"""The atlas folder: `atlas.npz` (grid shape, per-class probability) and `atlas.json` (choices, curves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LocsegError
from ..io.atomic import atomic_path, read_json
from ..io.manifest import read_manifest
from .build import support_distance

ATLAS_NPZ = "atlas.npz"
ATLAS_JSON = "atlas.json"


@dataclass
class Atlas:
    """Per-class probability on the atlas grid, and the dilation chosen for each class."""

    shape: tuple[int, int, int]
    probability: dict[int, np.ndarray]
    dilation: dict[int, int]
    kernel: str = "ball"
    info: dict[str, Any] = field(default_factory=dict)  # curves, names, folds (atlas.json)

    def distance(self, value: int) -> np.ndarray:
        """Distance (atlas voxels) to the class's undilated support, capped past its chosen dilation."""
        return support_distance(self.probability[value], self.kernel, limit=self.dilation[value] + 1)

    def support(self, value: int) -> np.ndarray:
        """The class's chosen support on the atlas grid: where predictions of the class may stay."""
        return self.distance(value) <= self.dilation[value]

    def save_arrays(self, folder: Path) -> None:
        arrays = {"shape": np.asarray(self.shape, dtype=np.int64),
                  "classes": np.asarray(sorted(self.probability), dtype=np.int64)}
        for c, p in self.probability.items():
            arrays[f"probability_{c}"] = p.astype(np.float32)
        with atomic_path(folder / ATLAS_NPZ) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, folder: str | Path) -> Atlas:
        """Read an `atlas` stage output."""
        folder = Path(folder)
        read_manifest(folder, "atlas")
        info = read_json(folder / ATLAS_JSON)
        try:
            with np.load(folder / ATLAS_NPZ) as z:
                shape = tuple(int(s) for s in z["shape"])
                probability = {int(c): np.asarray(z[f"probability_{int(c)}"]) for c in z["classes"]}
        except (OSError, KeyError, ValueError) as exc:
            raise LocsegError(f"unreadable atlas arrays ({exc})", folder / ATLAS_NPZ) from None
        dilation = {int(c): int(v["dilation"]) for c, v in info["classes"].items()}
        return cls(shape, probability, dilation, info.get("kernel", "ball"), info)
