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
    image and label of one geometry, label values in the label table. A DICOM series folder, or a folder
    of them, is checked as `infer` reads it (headers and slice grid). Exits 1 if a case is invalid."""
    from ..console import RichProgress
    from ..datasets import open_dataset
    from ..datasets.integrity import check_dataset
    from ..errors import LocsegError
    from ..inference.inputs import inputs_report

    try:
        ds = open_dataset(data, dataset)
    except LocsegError as not_a_dataset:
        inputs = _dicom_inputs(data) if dataset is None else None
        if not inputs:
            raise not_a_dataset from None
        with RichProgress() as progress:
            report, _ = inputs_report(data, inputs, progress, workers or 1, not header_only)
        _show(report, data, f"DICOM series {data}", {}, "images")
        return
    with RichProgress() as progress:
        report = check_dataset(ds, progress=progress, workers=workers or 1, read_data=not header_only)
    _show(report, ds.root, f"{ds.layout} dataset {data}", ds.skipped, ds.layout)


def _dicom_inputs(data) -> list:
    """The inputs `infer` would read from `data` when they hold a DICOM series, else none."""
    from ..errors import LocsegError
    from ..inference.inputs import open_inputs

    try:
        inputs = open_inputs(data)
    except LocsegError:
        return []
    return inputs if any(i.dicom for i in inputs) else []


def _show(report, root, title: str, skipped: dict[str, str], reader: str) -> None:
    """The report as one table of every problem and a summary line; exit 1 if a case is invalid."""
    from rich.table import Table

    from ..console import console

    if skipped:
        reasons: dict[str, list[str]] = {}
        for cid, why in skipped.items():
            reasons.setdefault(why, []).append(cid)
        for why, ids in reasons.items():
            shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
            console.print(f"[dim]{len(ids)} case{'s' * (len(ids) != 1)} left out by the {reader} reader "
                          f"({why}): {shown}[/]")
    if report.problems:
        table = Table(title=title, show_lines=False)
        for col in ("case", "", "file", "problem"):
            table.add_column(col, overflow="fold")
        for p in report.problems:
            shown_path = os.path.relpath(p.path, root) if os.path.isabs(p.path) else p.path
            mark = "[red]error[/]" if p.severity == "error" else "[yellow]warning[/]"
            table.add_row(p.case_id, mark, shown_path, p.message)
        console.print(table)
    style = "red" if report.invalid_cases() else "green"
    console.print(f"[{style}]{report.summary()}[/]" + ("" if report.data_checked else " (headers only)"))
    if report.invalid_cases():
        raise typer.Exit(code=1)


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(check)
