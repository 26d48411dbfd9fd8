"""`locseg check`: the integrity check of a raw dataset, as one table of every problem."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .options import Data, Workers


def check(
    data: Data,
    dataset: Annotated[str | None, typer.Option("--dataset", help="The layout (btcv, amos22, kits23, nnunet, msd, "
                                                                  "folder, images); default: detected.")] = None,
    workers: Workers = None,
    header_only: Annotated[bool, typer.Option("--header-only", help="Check headers only (fast): skips "
                                                                    "finiteness and label values.")] = False,
) -> None:
    """Check every case of a raw dataset: readable, 3D, finite, plausible spacing and orientation,
    image and label of one geometry, label values in the label table. Exits 1 if a case is invalid."""
    from rich.table import Table

    from ..console import RichProgress, console
    from ..datasets import open_dataset
    from ..datasets.integrity import check_dataset

    ds = open_dataset(data, dataset)
    with RichProgress() as progress:
        report = check_dataset(ds, progress=progress, workers=workers or 1, read_data=not header_only)
    if ds.skipped:
        reasons: dict[str, list[str]] = {}
        for cid, why in ds.skipped.items():
            reasons.setdefault(why, []).append(cid)
        for why, ids in reasons.items():
            shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
            console.print(f"[dim]{len(ids)} case{'s' * (len(ids) != 1)} left out by the {ds.layout} reader "
                          f"({why}): {shown}[/]")
    if report.problems:
        table = Table(title=f"{ds.layout} dataset {data}", show_lines=False)
        for col in ("case", "", "file", "problem"):
            table.add_column(col, overflow="fold")
        for p in report.problems:
            shown_path = os.path.relpath(p.path, ds.root) if os.path.isabs(p.path) else p.path
            mark = "[red]error[/]" if p.severity == "error" else "[yellow]warning[/]"
            table.add_row(p.case_id, mark, shown_path, p.message)
        console.print(table)
    style = "red" if report.invalid_cases() else "green"
    console.print(f"[{style}]{report.summary()}[/]" + ("" if report.data_checked else " (headers only)"))
    if report.invalid_cases():
        raise typer.Exit(code=1)


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(check)
