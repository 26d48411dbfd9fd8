"""A trained run, ready to predict: its model, weights, label table and preprocessing."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import resolve_config
from ..errors import LocsegError
from ..io.manifest import Manifest, read_manifest
from ..location import apply_shift
from ..models import build_model
from ..preprocessing.plan import PreprocessPlan
from ..training.checkpoint import CHECKPOINT_DIR, load_checkpoint
from ..training.config import TrainConfig
from .config import InferConfig
from .sliding_window import predict_volume, softmax_


@dataclass
class RunPredictor:
    """Loads a `train` output and predicts class probabilities for preprocessed volumes."""

    run: Path
    manifest: Manifest
    train_cfg: TrainConfig
    plan: PreprocessPlan
    model: torch.nn.Module
    device: torch.device
    cfg: InferConfig

    @classmethod
    def load(cls, run: str | Path, cfg: InferConfig) -> RunPredictor:
        run = Path(run)
        man = read_manifest(run, "train")
        train_cfg = resolve_config(TrainConfig, base=man.config)
        plan = PreprocessPlan.of(man, run)
        from ..training.distributed import DistInfo, resolve_device

        device = resolve_device(cfg.device, DistInfo())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model = build_model(train_cfg)
        ckpt_path = run / CHECKPOINT_DIR / f"{cfg.checkpoint}.pt"
        ckpt = load_checkpoint(ckpt_path, map_location="cpu")
        weights = ckpt.get("model") if isinstance(ckpt, dict) else None
        if not isinstance(weights, dict):
            raise LocsegError("not a locseg checkpoint (no model weights)", ckpt_path)
        try:
            model.load_state_dict(weights)
        except RuntimeError:
            raise LocsegError(f"weights of another model: they do not fit this run's model {train_cfg.model!r} "
                              f"({_mismatch(model.state_dict(), weights)})", ckpt_path) from None
        model.to(device).eval()
        return cls(run, man, train_cfg, plan, model, device, cfg)

    @property
    def labels(self) -> dict[str, str]:
        return self.manifest.extra["labels"]

    def logits(self, image: np.ndarray, location: list[np.ndarray], pad_value: float) -> torch.Tensor:
        """(C, z, y, x) logits on CPU, averaged over the configured mirrorings (as nnU-Net averages them).

        An inference tensor (`torch.inference_mode`): change it in place only inside that mode.
        """
        location = apply_shift(location, self.cfg.shift, self.cfg.shift_axes) if self.cfg.shift else location
        combos = [c for r in range(len(self.cfg.mirror_axes) + 1)
                  for c in itertools.combinations(self.cfg.mirror_axes, r)]
        total = None
        with torch.inference_mode():
            for axes in combos:  # the first is the unmirrored volume
                img = np.flip(image, axes).copy() if axes else image
                # the location follows its voxel: a mirrored axis gets its location vector reversed
                loc = [v[::-1].copy() if a in axes else v for a, v in enumerate(location)]
                out = predict_volume(self.model, img, loc, self.train_cfg.patch_size, overlap=self.cfg.overlap,
                                     sw_batch_size=self.cfg.sw_batch_size, device=self.device, pad_value=pad_value,
                                     amp=self.cfg.amp)
                if total is None:
                    total = out
                else:  # added through numpy's flipped view: no third full-volume copy
                    summed = total.numpy()
                    summed += np.flip(out.numpy(), [a + 1 for a in axes])
                del out
            if len(combos) > 1:
                total /= len(combos)
        return total

    def probabilities(self, image: np.ndarray, location: list[np.ndarray], pad_value: float) -> torch.Tensor:
        """(C, z, y, x) class probabilities on CPU: the softmax of `logits`, computed in place."""
        return softmax_(self.logits(image, location, pad_value))


def _mismatch(expected: dict, found: dict) -> str:
    """How a checkpoint's tensors differ from a model's, counted (missing, unexpected, mis-shaped)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shaped = [k for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    parts = [f"{len(v)} {name} tensor{'s' * (len(v) != 1)}, e.g. {v[0]!r}" for name, v in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)) if v]
    return "; ".join(parts) if parts else "tensors that do not load"
