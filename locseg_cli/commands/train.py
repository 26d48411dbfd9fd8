"""`locseg train`: train a registered model on a preprocessed dataset (CPU, one GPU, or torchrun)."""

from __future__ import annotations

import typer

from ..training.config import TrainConfig
from . import options as o


@o.config_options(TrainConfig)
def train_command(pre: o.Pre, out: o.Out, preset: o.Preset = None, model: o.Model = None,
                  workers: o.Workers = None, seed: o.Seed = None, device: o.Device = None, force: o.Force = False,
                  overrides: dict | None = None) -> None:
    """Train baseline / coordconv / locbam on patches with their location; resumes where it stopped.

    Multi-GPU: `torchrun --nproc_per_node N -m locseg_cli train ...` (rank 0 writes).
    """
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..runtime.device import dist_info
    from ..training import train

    cfg = resolve_config(TrainConfig, preset, {**overrides, "model": model, "workers": workers, "seed": seed,
                                               "device": device})
    main = dist_info().is_main
    if main:
        with RichProgress() as progress:
            result = train(pre, out, cfg, force=force, progress=progress)
    else:
        result = train(pre, out, cfg, force=force)
    if not main:
        return
    if not result.did_work:
        console.print(f"train: [green]up to date[/] ({out})")
        return
    best = "n/a" if result.best_mean_dice is None else f"{result.best_mean_dice:.4f}"
    console.print(f"train: {cfg.model} {result.iterations} iterations -> {out}  best validation mean Dice {best}")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(train_command)
