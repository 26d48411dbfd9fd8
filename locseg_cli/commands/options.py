"""The options every subcommand shares, defined once so they mean the same thing everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_dir = {"exists": True, "file_okay": False, "dir_okay": True, "resolve_path": False}

Data = Annotated[Path, typer.Option("--data", help="A raw dataset (any supported layout) or a folder of images.",
                                    **_dir)]
Pre = Annotated[Path, typer.Option("--pre", help="A `locseg preprocess` output.", **_dir)]
Run = Annotated[Path, typer.Option("--run", help="A `locseg train` output.", **_dir)]
Pred = Annotated[Path, typer.Option("--pred", help="Predictions (`infer` or `postprocess` output).", **_dir)]
Ref = Annotated[Path, typer.Option("--ref", help="Reference labels: a raw dataset or a folder of label files.",
                                   **_dir)]
Out = Annotated[Path, typer.Option("--out", help="Where this stage writes (required, never inferred).",
                                   file_okay=False)]
Preset = Annotated[str | None, typer.Option("--preset", help="A preset name under presets/ or a YAML file; "
                                                                 "command-line options override it.")]
Model = Annotated[str | None, typer.Option("--model", help="A model registry name (see `locseg models`).")]
Workers = Annotated[int | None, typer.Option("--workers", min=0, help="Worker processes.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda or cuda:N (default: cuda if available).")]
Force = Annotated[bool, typer.Option("--force", help="Redo the stage even if it is up to date.")]
