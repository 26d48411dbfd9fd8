"""`locseg atlas`: per-class atlas from one fold's training labels, dilation chosen on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..atlas.config import AtlasConfig
from . import options as o

_dir = {"exists": True, "file_okay": False}


@o.config_options(AtlasConfig)
def atlas_command(
    pre: o.Pre, out: o.Out,
    pred: Annotated[Path | None, typer.Option("--pred", help="Predictions for the fold's validation cases "
                                              "(`infer` output): choose dilations on their Dice.", **_dir)] = None,
    ref: Annotated[Path | None, typer.Option("--ref", help="Reference labels for --pred (default: the raw "
                                             "dataset --pre was made from).", **_dir)] = None,
    bpr: Annotated[Path | None, typer.Option("--bpr", help="Body-part scores of the training cases: record "
                                             "each class's score range (for postprocess bpr-range).", **_dir)] = None,
    preset: o.Preset = None, force: o.Force = False, overrides: dict | None = None,
) -> None:
    """Average the training fold's labels on the median box grid and pick each class's dilation.

    Example: locseg atlas --pre pre --out atlas --pred val-pred
    """
    from ..atlas import build_atlas
    from ..config import resolve_config
    from ..console import RichProgress, console

    cfg = resolve_config(AtlasConfig, preset, overrides)
    with RichProgress() as progress:
        info = build_atlas(pre, out, cfg, pred=pred, ref=ref, bpr=bpr, progress=progress, force=force)
    console.print(_table(info))
    console.print(f"atlas: {out}")


def _table(info: dict):
    from rich.table import Table

    dilations = list(next(iter(info["classes"].values()))["curve"]) if info["classes"] else []
    table = Table(title=f"atlas {'x'.join(map(str, info['shape']))}, {info['kernel']} dilation; "
                        f"{info['criterion']}", title_justify="left")
    for col in ["label", "name", "chosen", *[f"r={r}" for r in dilations], "bpr range"]:
        table.add_column(col, justify="left" if col in ("label", "name") else "right")
    for c, v in info["classes"].items():
        rng = v.get("bpr_range")
        table.add_row(c, v["name"], str(v["dilation"]), *[f"{v['curve'][r]:.4f}" for r in dilations],
                      "-" if rng is None else f"{rng[0]:.1f}..{rng[1]:.1f}")
    return table


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(atlas_command)
