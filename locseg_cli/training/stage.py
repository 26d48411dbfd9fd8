"""The `train` stage's entry: decides "up to date" from manifests alone, then hands over to the loop.

Kept free of torch, so a rerun of a finished training (a second `make demo`) answers in the time of a
Python start, not of a torch import; `trainer.run_training` does the rest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import config_dict
from ..errors import LocsegError
from ..io.manifest import StageWriter, read_manifest
from ..preprocessing.plan import PreprocessPlan
from ..progress import Progress
from .config import TrainConfig
from .init_from import find_init_source
from .result import TrainResult


def fold_cases(manifest, plan: PreprocessPlan, fold: int, pre: Path) -> tuple[list[str], list[str]]:
    """(train ids, validation ids) of `fold`; fold -1 trains on every labelled case, no validation."""
    labelled = sorted(cid for cid, c in manifest.cases.items() if c["meta"].get("labelled"))
    if fold == -1:
        return labelled, []
    try:
        return plan.fold(fold)
    except IndexError:
        raise LocsegError(f"fold {fold} does not exist (the preprocessed data has {len(plan.splits)} folds; "
                          "use --fold -1 to train on all cases)", pre) from None


def train(pre: str | Path, out: str | Path, cfg: TrainConfig, force: bool = False,
          progress: Progress | None = None) -> TrainResult:
    """Train `cfg.model` on fold `cfg.fold` of a preprocessed dataset; resumes an interrupted run."""
    pre, out = Path(pre), Path(out)
    manifest = read_manifest(pre, "preprocess")
    plan = PreprocessPlan.of(manifest, pre)
    cfg = dataclasses.replace(cfg, out_channels=max(int(v) for v in plan.labels) + 1)  # values, not a count: a class subset keeps them
    train_ids, val_ids = fold_cases(manifest, plan, cfg.fold, pre)
    inputs = {"pre": (pre, manifest.fingerprint)}
    init = None
    if cfg.init_from is not None:
        init = find_init_source(cfg.init_from)
        inputs["init_from"] = init.input
    done = StageWriter("train", out, config_dict(cfg), inputs, force).already_done()
    if done is not None:  # up to date: no torch, model, sampler or process group needed
        return TrainResult(out, False, cfg.total_iterations, done.extra.get("best_mean_dice"))
    from .trainer import run_training

    return run_training(pre, out, cfg, manifest, plan, train_ids, val_ids, force, progress, inputs, init)
