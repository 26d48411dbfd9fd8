"""`locseg preprocess`: raw dataset -> resampled, normalised volumes with location vectors and folds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..preprocessing.config import PreprocessConfig
from . import options as o


@o.config_options(PreprocessConfig)
def preprocess_command(data: o.Data, out: o.Out, preset: o.Preset = None,
                       bpr: Annotated[Path | None, typer.Option("--bpr", exists=True, file_okay=False,
                                                                   help="`locseg bpr score` output "
                                                                        "(with --location bpr).")] = None,
                       workers: o.Workers = None, seed: o.Seed = None, force: o.Force = False,
                       overrides: dict | None = None) -> None:
    """Reorient, crop, resample and normalise a raw dataset; write location vectors and 5 folds."""
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..preprocessing import preprocess

    cfg = resolve_config(PreprocessConfig, preset, {**overrides, "workers": workers, "seed": seed})
    with RichProgress() as progress:
        manifest, did = preprocess(data, out, cfg, bpr=bpr, force=force, progress=progress)
    if not did:
        console.print(f"preprocess: [green]up to date[/] ({out})")
        return
    ex = manifest.extra
    console.print(f"preprocess: {len(manifest.cases)} cases -> {out}  spacing {ex['spacing']}  "
                  f"median shape {ex['median_shape']}  PtVC small {100 * ex['ptvc']['small']:.2f}%")
    if ex.get("excluded"):
        console.print(f"left out: {', '.join(sorted(ex['excluded']))}")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(preprocess_command)
