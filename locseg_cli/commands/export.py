"""`locseg export`: a run's network as ONNX or TorchScript, with a model card (docs/export.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options as o

Format = Annotated[str, typer.Option("--format", help="onnx or torchscript.")]
Checkpoint = Annotated[str, typer.Option("--checkpoint", help="last (final weights) or best (chosen on validation).")]


def export_command(run: o.Run, fmt: Format, out: o.Out, checkpoint: Checkpoint = "last",
                   force: o.Force = False) -> None:
    """Write the network (dynamic batch, the run's patch size) and card.json into --out."""
    from ..console import console
    from ..export import export_run

    result = export_run(run, out, fmt, checkpoint=checkpoint, force=force)
    check = result.card["check"]
    console.print(f"export: {result.model_file} + card.json (checked with {check['runtime']}: "
                  f"max logit difference {check['max_abs_logit_diff']:.1e})")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(export_command)
