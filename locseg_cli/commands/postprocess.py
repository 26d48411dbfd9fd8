"""`locseg postprocess`: largest connected component, atlas masking, body-position range filtering."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..postprocessing.config import PostprocessConfig
from . import options as o

_dir = {"exists": True, "file_okay": False}


@o.config_options(PostprocessConfig)
def postprocess_command(
    pred: o.Pred, out: o.Out,
    atlas: Annotated[Path | None, typer.Option("--atlas", help="A `locseg atlas` output (methods atlas and "
                                               "bpr-range).", **_dir)] = None,
    bpr: Annotated[Path | None, typer.Option("--bpr", help="Body-part scores of these cases (method bpr-range).",
                                             **_dir)] = None,
    preset: o.Preset = None, force: o.Force = False, overrides: dict | None = None,
) -> None:
    """Filter predictions; --method lcf|atlas|bpr-range, several in order (e.g. atlas,lcf).

    lcf: keep each class's largest connected component. atlas: remove each class outside its
    atlas support. bpr-range: remove each class at slices whose body-part score is outside the
    class's training range +- --bpr-margin.

    Example: locseg postprocess --pred pred --out pred-lcf --method lcf
    """
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..postprocessing import postprocess

    cfg = resolve_config(PostprocessConfig, preset, overrides)
    with RichProgress() as progress:
        manifest, did = postprocess(pred, out, cfg, atlas=atlas, bpr=bpr, progress=progress, force=force)
    if not did:
        console.print(f"postprocess: [green]up to date[/] ({out})")
        return
    removed = {m: 0 for m in cfg.method}
    for entry in manifest.cases.values():
        for m, per in entry["meta"].get("postprocess", {}).get("removed_voxels", {}).items():
            removed[m] = removed.get(m, 0) + sum(per.values())
    summary = ", ".join(f"{m} removed {n} voxels" for m, n in removed.items())
    console.print(f"postprocess: {len(manifest.cases)} cases -> {out} ({summary})")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(postprocess_command)
