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
from ..models import ModelConfig, build_model
from ..models.layout import resolve_memory_format
from ..preprocessing.plan import PreprocessPlan
from ..runtime.checkpoint import CHECKPOINT_DIR, load_checkpoint
from ..runtime.device import DistInfo, resolve_device
from .config import InferConfig
from .sliding_window import predict_volume, softmax_


@dataclass
class TrainedRun:
    """A `train` output with its weights loaded on CPU: what inference and export start from."""

    run: Path
    manifest: Manifest
    model_cfg: ModelConfig
    patch_size: tuple[int, int, int]
    plan: PreprocessPlan
    model: torch.nn.Module  # in training mode, on CPU, weights of `checkpoint_path`
    checkpoint_path: Path
    checkpoint: dict  # the checkpoint's other entries (iteration, best_mean_dice, ...), weights dropped


def load_trained_run(run: str | Path, checkpoint: str = "last") -> TrainedRun:
    """The run's model (options and patch size from its manifest, not training's config class: inference
    sits below training) with the weights of `checkpoints/{checkpoint}.pt`; one line on a bad run."""
    run = Path(run)
    man = read_manifest(run, "train")
    model_cfg = resolve_config(ModelConfig, base=man.config)
    patch_size = tuple(int(p) for p in man.config["patch_size"])
    plan = PreprocessPlan.of(man, run)
    model = build_model(model_cfg)
    ckpt_path = run / CHECKPOINT_DIR / f"{checkpoint}.pt"
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    weights = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(weights, dict):
        raise LocsegError("not a locseg checkpoint (no model weights)", ckpt_path)
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise LocsegError(f"weights of another model: they do not fit this run's model {model_cfg.model!r} "
                          f"({weight_mismatch(model.state_dict(), weights)})", ckpt_path) from None
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "scaler")}
    return TrainedRun(run, man, model_cfg, patch_size, plan, model, ckpt_path, meta)


@dataclass
class RunPredictor:
    """Loads a `train` output and predicts class probabilities for preprocessed volumes.

    It reads the run's model options and patch size from the run's config, not through training's
    config class: inference sits below training (see docs/architecture.md).
    """

    run: Path
    manifest: Manifest
    model_cfg: ModelConfig
    patch_size: tuple[int, int, int]
    plan: PreprocessPlan
    model: torch.nn.Module
    device: torch.device
    cfg: InferConfig

    @classmethod
    def load(cls, run: str | Path, cfg: InferConfig) -> RunPredictor:
        device = resolve_device(cfg.device, DistInfo())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        trained = load_trained_run(run, cfg.checkpoint)
        trained.model.to(device, memory_format=resolve_memory_format("auto", device)).eval()
        return cls(trained.run, trained.manifest, trained.model_cfg, trained.patch_size, trained.plan, trained.model,
                   device, cfg)

    @property
    def labels(self) -> dict[str, str]:
        return self.manifest.extra["labels"]

    def logits(self, image: np.ndarray, location: list[np.ndarray], pad_value: float,
               shift: float | None = None) -> torch.Tensor:
        """(C, z, y, x) logits on CPU, averaged over the configured mirrorings (as nnU-Net averages them).

        `shift` (% of the location range, along `cfg.shift_axes`) replaces `cfg.shift` for this call,
        so shift-eval runs every shift with one predictor. An inference tensor (`torch.inference_mode`):
        change it in place only inside that mode.
        """
        shift = self.cfg.shift if shift is None else shift
        location = apply_shift(location, shift, self.cfg.shift_axes) if shift else location
        combos = [c for r in range(len(self.cfg.mirror_axes) + 1)
                  for c in itertools.combinations(self.cfg.mirror_axes, r)]
        total = None
        with torch.inference_mode():
            for axes in combos:  # the first is the unmirrored volume
                img = np.flip(image, axes).copy() if axes else image
                # the location follows its voxel: a mirrored axis gets its location vector reversed
                loc = [v[::-1].copy() if a in axes else v for a, v in enumerate(location)]
                out = predict_volume(self.model, img, loc, self.patch_size, overlap=self.cfg.overlap,
                                     sw_batch_size=self.cfg.sw_batch_size, device=self.device, pad_value=pad_value,
                                     amp=self.cfg.amp, layout=resolve_memory_format("auto", self.device))
                if total is None:
                    total = out
                else:  # added through numpy's flipped view: no third full-volume copy
                    summed = total.numpy()
                    summed += np.flip(out.numpy(), [a + 1 for a in axes])
                del out
            if len(combos) > 1:
                total /= len(combos)
        return total

    def probabilities(self, image: np.ndarray, location: list[np.ndarray], pad_value: float,
                      shift: float | None = None) -> torch.Tensor:
        """(C, z, y, x) class probabilities on CPU: the softmax of `logits`, computed in place."""
        return softmax_(self.logits(image, location, pad_value, shift))


def weight_mismatch(expected: dict, found: dict) -> str:
    """How a checkpoint's tensors differ from a model's, counted (missing, unexpected, mis-shaped)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shaped = [k for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    parts = [f"{len(v)} {name} tensor{'s' * (len(v) != 1)}, e.g. {v[0]!r}" for name, v in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)) if v]
    return "; ".join(parts) if parts else "tensors that do not load"
