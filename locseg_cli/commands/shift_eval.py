"""`locseg shift-eval`: validation Dice of a run for each shift of its axial location signal."""

from __future__ import annotations

import typer

from ..shift.config import ShiftEvalConfig
from . import options as o


@o.config_options(ShiftEvalConfig)
def shift_eval_command(run: o.Run, pre: o.Pre, out: o.Out, preset: o.Preset = None, device: o.Device = None,
                       force: o.Force = False, overrides: dict | None = None) -> None:
    """Move the location signal by s% of its full range (100 = out of frame) and score the validation cases.

    Example: locseg shift-eval --run runs/locbam --pre pre --out shift/locbam --shifts 0,1,5,10,25,50,100
    """
    from rich.table import Table

    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..shift import SHIFT_JSON, shift_eval

    cfg = resolve_config(ShiftEvalConfig, preset, {**overrides, "device": device})
    with RichProgress() as progress:
        result = shift_eval(run, pre, out, cfg, force=force, progress=progress)
    table = Table(title=f"{result.table['model']}: Dice per {cfg.axes} shift", title_justify="left")
    classes = list(result.table["shifts"][0]["dice"]) if result.table["shifts"] else []
    for col in ["shift %", "mean", *classes]:
        table.add_column(col, justify="right")
    for row in result.table["shifts"]:
        table.add_row(f"{row['shift']:g}", f"{row['mean_dice']:.4f}", *(f"{row['dice'][c]:.4f}" for c in classes))
    console.print(table)
    state = f"{len(result.computed)} shift(s) computed" if result.computed else "[green]up to date[/]"
    console.print(f"shift-eval: {state} -> {out / SHIFT_JSON}")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(shift_eval_command)
