"""`locseg shift-eval`: validation Dice of a run for each shift of its axial location signal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..shift.config import ShiftEvalConfig
from . import options as o


@o.config_options(ShiftEvalConfig)
def shift_eval_command(run: o.Run, out: o.Out,
                       pre: Annotated[Path | None, typer.Option(
                           "--pre", exists=True, file_okay=False,
                           help="The run's preprocessed dataset: score its validation cases.")] = None,
                       data: Annotated[Path | None, typer.Option(
                           "--data", exists=True, file_okay=False,
                           help="Or: a labelled raw cohort (an external test set), prepared with the run's "
                                "preprocessing.")] = None,
                       preset: o.Preset = None, device: o.Device = None,
                       force: o.Force = False, overrides: dict | None = None) -> None:
    """Move the location signal by s% of its full range (100 = out of frame) and score held-out cases.

    Example: locseg shift-eval --run runs/locbam --pre pre --out shift/locbam --shifts 0,1,5,10,25,50,100
             locseg shift-eval --run runs/locbam --data test-raw --out shift/locbam
    """
    from rich.table import Table

    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..shift import SHIFT_JSON, shift_eval

    cfg = resolve_config(ShiftEvalConfig, preset, {**overrides, "device": device})
    with RichProgress() as progress:
        result = shift_eval(run, pre, out, cfg, force=force, progress=progress, data=data)
    # one row per class, one column per shift: a dataset has many more classes than the screen has columns
    rows = result.table["shifts"]
    console.print(f"[bold]{result.table['model']}: Dice per {cfg.axes} shift[/]")
    table = Table()
    for col in ["class", *(f"{r['shift']:g}%" for r in rows)]:
        table.add_column(col, justify="right" if col != "class" else "left")
    table.add_row("[bold]mean[/]", *(f"[bold]{r['mean_dice']:.4f}[/]" for r in rows))
    for c in (rows[0]["dice"] if rows else []):
        table.add_row(c, *(f"{r['dice'][c]:.4f}" for r in rows))
    console.print(table)
    state = f"{len(result.computed)} shift(s) computed" if result.computed else "[green]up to date[/]"
    console.print(f"shift-eval: {state} -> {out / SHIFT_JSON}")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(shift_eval_command)
