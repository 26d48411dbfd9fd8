"""Fine-tuning: `--init-from` starts a run from another run's weights (not its optimizer or iteration).

The source is found without torch (the `train` stage decides "up to date" before importing it); the
weights load in `load_init_weights`. Each weight must fit the new network as it is, except those of the
output layer, which start afresh when the label tables differ: same classes, same meaning of every
output channel; otherwise the channels would silently stand for other organs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LocsegError
from ..io.manifest import file_fingerprint, read_manifest
from ..runtime.checkpoint import CHECKPOINT_DIR

if TYPE_CHECKING:
    import torch

    from .config import TrainConfig

SOURCE_CHECKPOINT = "last"  # a run folder starts the new run from its final weights, as `infer` predicts


@dataclass(frozen=True)
class InitSource:
    """The checkpoint a run starts from and the label table of the run that wrote it."""

    checkpoint: Path
    labels: dict[str, str]

    @property
    def input(self) -> tuple[Path, str]:
        """(path, fingerprint) for the run's manifest inputs: a retrained source makes the run stale."""
        return self.checkpoint, file_fingerprint(self.checkpoint)


def find_init_source(path: str | Path) -> InitSource:
    """A `locseg train` output (its `last` checkpoint) or a checkpoint file inside one."""
    path = Path(path)
    if path.is_dir():
        run, checkpoint = path, path / CHECKPOINT_DIR / f"{SOURCE_CHECKPOINT}.pt"
    elif path.is_file():
        run, checkpoint = (path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent), path
    else:
        raise LocsegError("--init-from: no such run folder or checkpoint", path)
    try:
        manifest = read_manifest(run, "train")
    except LocsegError as exc:
        raise LocsegError(f"--init-from needs a `locseg train` output (its label table): {exc.message}",
                          exc.path) from None
    if not checkpoint.is_file():
        raise LocsegError("--init-from: the run has no such checkpoint", checkpoint)
    return InitSource(checkpoint, dict(manifest.extra["labels"]))


def load_init_weights(model: torch.nn.Module, cfg: TrainConfig, source: InitSource,
                      labels: dict[str, str]) -> dict[str, Any]:
    """Copy the source's weights into `model`; returns what the run records (and says) about it.

    Same label table: every weight. Another one: every weight but the output layer's, which keeps
    its fresh initialisation (the record's `message` says so in one line).
    """
    from ..inference.predictor import weight_mismatch
    from ..runtime.checkpoint import load_checkpoint

    ck = load_checkpoint(source.checkpoint)
    weights = ck.get("model") if isinstance(ck, dict) else None
    if not isinstance(weights, dict):
        raise LocsegError("--init-from: not a locseg checkpoint (no model weights)", source.checkpoint)
    own = model.state_dict()
    head = output_layer_keys(cfg, own)
    fresh_head = source.labels != labels
    body = {k: v for k, v in own.items() if k not in head}
    found = {k: v for k, v in weights.items() if k not in head or not fresh_head}
    expected = body if fresh_head else own
    if set(found) != set(expected) or any(tuple(found[k].shape) != tuple(expected[k].shape) for k in expected):
        source_model = (ck.get("config") or {}).get("model", "another")
        raise LocsegError(f"--init-from: {source_model} weights do not fit this {cfg.model} network "
                          f"({weight_mismatch(expected, found)}); fine-tuning needs the source run's --model and "
                          "model options (--features, ...)", source.checkpoint)
    model.load_state_dict(found, strict=not fresh_head)
    record: dict[str, Any] = {"checkpoint": str(source.checkpoint.resolve()), "iteration": ck.get("iteration"),
                              "output_layer": "re-initialised" if fresh_head else "loaded"}
    if fresh_head:
        record["message"] = (f"init-from: label tables differ ({_classes(source.labels)} in the source, "
                             f"{_classes(labels)} here): the output layer starts afresh, every other weight "
                             f"from {source.checkpoint}")
    return record


def output_layer_keys(cfg: TrainConfig, weights: dict[str, torch.Tensor]) -> set[str]:
    """Which of a `cfg` network's `weights` follow the number of classes (found by building one class more)."""
    from ..models import build_model

    a = weights
    b = build_model(dataclasses.replace(cfg, out_channels=cfg.out_channels + 1)).state_dict()
    return {k for k in a if tuple(a[k].shape) != tuple(b[k].shape)}


def _classes(labels: dict[str, str]) -> str:
    names = [n for v, n in sorted(labels.items(), key=lambda kv: int(kv[0])) if int(v)]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return f"{len(names)} classes ({shown})"
