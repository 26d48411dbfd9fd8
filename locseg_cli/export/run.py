"""`locseg export`: a trained run's network as an ONNX or TorchScript file, with its model card.

The output folder holds the model file and `card.json`, or nothing: both are written into a temporary
folder beside `--out` that becomes `--out` by one rename (`io.atomic.atomic_dir`). The written file is
run back once on an example batch (onnxruntime, or `torch.jit.load`) and its largest logit difference
from the PyTorch model is recorded in the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LocsegError
from ..io.atomic import atomic_dir, check_new_dir, write_json
from .card import CARD_FILE, FORMAT_NAMES

# the largest logit difference accepted between the exported file and PyTorch, per unit of the largest
# logit magnitude (at least 1): float32 rounding in another runtime's kernels
TOLERANCE = 1e-4
# examples traced with a batch of 1 would let torch.export fix the batch size to 1: trace with 2
EXAMPLE_BATCH = 2


@dataclass
class ExportResult:
    """Where the export went and what its card says."""

    out: Path
    model_file: Path
    card: dict[str, Any]


def check_format(fmt: str) -> str:
    """The format name, or one line listing the known ones."""
    if fmt not in FORMAT_NAMES:
        raise LocsegError(f"--format: unknown format {fmt!r} (known: {', '.join(FORMAT_NAMES)})")
    return fmt


def export_run(run: str | Path, out: str | Path, fmt: str, checkpoint: str = "last",
               force: bool = False) -> ExportResult:
    """Export `run`'s network (weights of `checkpoints/{checkpoint}.pt`) as `fmt` into the folder `out`."""
    check_format(fmt)
    if checkpoint not in ("last", "best"):
        raise LocsegError(f"--checkpoint: must be last or best, got {checkpoint!r}")
    out = check_new_dir(out, force)  # before torch and the weights load

    import torch

    from ..inference.predictor import load_trained_run
    from .formats import FORMATS

    trained = load_trained_run(run, checkpoint)
    model = trained.model.to(memory_format=torch.contiguous_format).eval()
    image, location = example_inputs(trained.model_cfg.in_channels, trained.patch_size)
    form = FORMATS[fmt]
    with atomic_dir(out, replace=force) as tmp:
        made = form.write(model, (torch.from_numpy(image), torch.from_numpy(location)), tmp / form.file)
        check = verify(model, form.run(tmp / form.file, image, location), image, location, form.runtime())
        card = _card(trained, fmt, form.file, made, check)
        write_json(tmp / CARD_FILE, card)
    return ExportResult(out, out / form.file, card)


def example_inputs(in_channels: int, patch_size: tuple[int, int, int]):
    """A batch of CT-like patches and their location channels (patches of a volume twice the patch size).

    Deterministic, so an export is reproducible; values in the ranges the network sees (normalised
    intensities, locations within -0.5..0.5).
    """
    import numpy as np

    from ..location import location_channels, location_vectors

    rng = np.random.default_rng(0)
    image = rng.standard_normal((EXAMPLE_BATCH, in_channels, *patch_size)).astype(np.float32)
    vectors = location_vectors([2 * p for p in patch_size])
    starts = [[0, 0, 0], [p // 2 for p in patch_size]] + [[p for p in patch_size]] * (EXAMPLE_BATCH - 2)
    location = np.stack([location_channels(vectors, s, patch_size) for s in starts[:EXAMPLE_BATCH]])
    return image, location


def verify(model, logits, image, location, runtime: str) -> dict[str, Any]:
    """Compare the exported file's logits with the PyTorch model's; an error past `TOLERANCE` (a bug)."""
    import numpy as np
    import torch

    with torch.no_grad():
        expected = model(torch.from_numpy(image), torch.from_numpy(location)).numpy()
    diff = float(np.max(np.abs(np.asarray(logits) - expected)))
    scale = float(np.max(np.abs(expected)))
    limit = TOLERANCE * max(1.0, scale)  # float32 rounding grows with the logits of a trained network
    if not diff <= limit:
        raise RuntimeError(f"the exported model's logits differ from PyTorch's by {diff:.3g} (> {limit:.3g})")
    return {"runtime": runtime, "batch": int(image.shape[0]), "max_abs_logit_diff": diff,
            "max_abs_logit": scale, "tolerance": limit}


def _card(trained, fmt: str, file: str, made: dict[str, str], check: dict[str, Any]) -> dict[str, Any]:
    import torch

    from .. import __version__
    from ..models import count_parameters
    from .card import model_card

    ckpt = trained.checkpoint
    checkpoint = {"name": trained.checkpoint_path.stem, "iteration": ckpt.get("iteration"),
                  "best_mean_dice": ckpt.get("best_mean_dice"), "sha256": _sha256(trained.checkpoint_path)}
    versions = {"locseg": __version__, "torch": torch.__version__, **made}
    return model_card(plan=trained.plan, model_cfg=trained.model_cfg, patch_size=trained.patch_size, fmt=fmt,
                      file=file, checkpoint=checkpoint, versions=versions,
                      parameters=count_parameters(trained.model), check=check)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
