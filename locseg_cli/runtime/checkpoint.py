"""Checkpoints: written atomically, loaded safely (`weights_only=True`: no code from a data file runs).

torch is imported inside the functions, so torch-free code (the `train` stage's up-to-date check) can
name checkpoint paths through `CHECKPOINT_DIR`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import atomic_path

if TYPE_CHECKING:
    import torch

CHECKPOINT_DIR = "checkpoints"


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DDP and/or torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_checkpoint(path: Path, model, optimizer, scaler, iteration: int, best: float | None, fingerprint: str,
                    cfg: Any) -> None:
    """Model, optimizer and scaler state with the run's config (a config dataclass), written atomically."""
    import torch

    state = {"model": unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": scaler.state_dict() if scaler is not None else None, "iteration": iteration,
             "best_mean_dice": best, "fingerprint": fingerprint, "config": config_dict(cfg)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """Load a checkpoint safely (tensors and plain containers only; no code runs)."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise LocsegError("checkpoint not found", path) from None
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise LocsegError("refused: it holds Python objects, not only tensors, and loading them could run "
                              "code (not a locseg checkpoint)", path) from None
        raise LocsegError(f"not a readable locseg checkpoint ({str(exc).splitlines()[0][:120]})", path) from None
    except Exception as exc:  # corrupted or foreign file
        raise LocsegError(f"not a readable locseg checkpoint ({str(exc).splitlines()[0][:120]})", path) from None
