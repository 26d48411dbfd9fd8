"""`locseg models`: the model registry, with parameter counts at the given widths."""

from __future__ import annotations

from typing import Annotated

import typer

Features = Annotated[str | None, typer.Option("--features", help="Six BasicUNet widths, e.g. 16,16,32,64,128,16 "
                                                                 "(default: the paper's 32,32,64,128,256,32).")]
OutChannels = Annotated[int, typer.Option("--out-channels", min=1, help="Output classes incl. background.")]


def models(features: Features = None, out_channels: OutChannels = 14) -> None:
    """List the registered models (for --model) with their parameter counts."""
    from rich.table import Table

    from ..config import coerce
    from ..console import console
    from ..models.config import ModelConfig
    from ..models.summary import model_summaries

    cfg = ModelConfig(out_channels=out_channels)
    if features is not None:
        cfg.features = coerce(features, tuple[int, int, int, int, int, int], "--features")
    rows = model_summaries(cfg)
    table = Table(title=f"models (features {','.join(map(str, cfg.features))}, {out_channels} outputs)")
    for col, just in (("name", "left"), ("location", "center"), ("parameters", "right"),
                      ("vs baseline", "right"), ("what", "left")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r.name, "yes" if r.uses_location else "no", f"{r.parameters:,}", f"{100 * r.overhead:+.2f}%",
                      r.description)
    console.print(table)


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(models)
