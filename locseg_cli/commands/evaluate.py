"""`locseg evaluate`: Dice, IoU, NSD and HD95 of predictions against reference labels."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from .options import Force, Out, Pred, Preset, Ref, Workers


def evaluate(
    pred: Pred,
    ref: Ref,
    out: Out,
    preset: Preset = None,
    nsd_tolerance_mm: Annotated[float | None, typer.Option(
        "--nsd-tolerance-mm", help="Surface tolerance of the NSD, in mm (default 1.0).")] = None,
    hd_percentile: Annotated[float | None, typer.Option(
        "--hd-percentile", help="Percentile of the Hausdorff distance (100 = maximum) (default 95).")] = None,
    labels: Annotated[str | None, typer.Option(
        "--labels", help="Comma-separated label values to score (default: every foreground label).")] = None,
    region: Annotated[list[str] | None, typer.Option(
        "--region", help="NAME=V1,V2,...: also score these labels merged into one region (repeatable).")] = None,
    surface: Annotated[bool | None, typer.Option(
        "--surface/--no-surface", help="Compute NSD and HD (slower) (default: yes).")] = None,
    workers: Workers = None,
    force: Force = False,
) -> None:
    """Score predictions against references: per case and class, with an nnU-Net-style summary.json.

    Example: locseg evaluate --pred pred --ref raw --out eval
    """
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..errors import LocsegError
    from ..evaluation import EvaluateConfig
    from ..evaluation import evaluate as run_evaluate

    regions = None
    if region:
        regions = {}
        for item in region:
            name, sep, values = item.partition("=")
            if not sep or not name.strip():
                raise LocsegError(f"--region expects NAME=V1,V2,..., got {item!r}")
            try:
                regions[name.strip()] = [int(v) for v in values.split(",") if v.strip()]
            except ValueError:
                raise LocsegError(f"--region {item!r}: label values must be integers") from None
    cfg = resolve_config(EvaluateConfig, preset, {
        "nsd_tolerance_mm": nsd_tolerance_mm, "hd_percentile": hd_percentile, "labels": labels,
        "regions": regions, "surface": surface, "workers": workers})
    with RichProgress() as progress:
        summary = run_evaluate(pred, ref, out, cfg, progress, force=force)
    console.print(summary_table(summary, cfg.hd_name))
    console.print(f"summary: {out / 'summary.json'}")


def summary_table(summary: dict[str, Any], hd_name: str = "HD95"):
    """The per-label means and the foreground mean as a rich table."""
    from rich.table import Table

    def fmt(v: Any, digits: int = 4) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"

    n_cases = len(summary["metric_per_case"])
    table = Table(title=f"mean over {n_cases} case(s)", title_justify="left")
    for col in ("label", "name", "Dice", "IoU", "NSD", f"{hd_name} mm", "cases"):
        table.add_column(col, justify="left" if col in ("label", "name") else "right")
    names = summary.get("labels", {})
    for key, m in summary["mean"].items():
        scored = sum(1 for c in summary["metric_per_case"] if not math.isnan(float(c["metrics"][key]["Dice"])))
        table.add_row(key, names.get(key, key), fmt(m["Dice"]), fmt(m["IoU"]), fmt(m.get("NSD")),
                      fmt(m.get(hd_name), 2), str(scored))
    fg = summary["foreground_mean"]
    table.add_row("[bold]mean[/]", "foreground", fmt(fg["Dice"]), fmt(fg["IoU"]), fmt(fg.get("NSD")),
                  fmt(fg.get(hd_name), 2), str(n_cases), end_section=True)
    return table


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(evaluate)
