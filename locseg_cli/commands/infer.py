"""`locseg infer`: predictions in each raw image's own geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..inference.config import InferConfig
from . import options as o


@o.config_options(InferConfig)
def infer_command(run: o.Runs, out: o.Out,
                  data: Annotated[Path | None, typer.Option("--data", exists=True,
                                                            help="Raw images: a dataset, a folder of NIfTI files, "
                                                                 "one NIfTI file, a DICOM series folder or a folder "
                                                                 "of them.")] = None,
                  pre: Annotated[Path | None, typer.Option("--pre", exists=True, file_okay=False,
                                                           help="Or: a preprocessed dataset.")] = None,
                  bpr: Annotated[Path | None, typer.Option("--bpr", exists=True, file_okay=False,
                                                           help="BPR scores of the images (BPR-location runs; default: "
                                                                "the regressor the run records scores them).")
                                 ] = None,
                  preset: o.Preset = None, device: o.Device = None, force: o.Force = False,
                  overrides: dict | None = None) -> None:
    """Sliding-window, location-aware inference with the run's own preprocessing; NIfTI out (+ DICOM SEG for DICOM).

    Several --run: an ensemble (their softmax probabilities averaged, as nnU-Net does with its folds).
    """
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..inference import infer

    cfg = resolve_config(InferConfig, preset, {**overrides, "device": device})
    with RichProgress() as progress:
        manifest, did = infer(run, out, cfg, data=data, pre=pre, bpr=bpr, force=force, progress=progress)
    state = f"{len(manifest.cases)} predictions -> {out}" if did else f"[green]up to date[/] ({out})"
    console.print(f"infer: {state}")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(infer_command)
