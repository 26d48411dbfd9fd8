"""`locseg report`: the paper's tables and figures from the stages' output folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..reporting.config import ReportConfig
from . import options as o

_folder = {"exists": True, "file_okay": False, "dir_okay": True}


@o.config_options(ReportConfig)
def report_command(
    out: o.Out,
    runs: Annotated[Path | None, typer.Option("--runs", help="A folder holding `train` outputs (any depth).",
                                              **_folder)] = None,
    evals: Annotated[Path | None, typer.Option("--evals", help="A folder holding `evaluate` outputs.",
                                               **_folder)] = None,
    shifts: Annotated[Path | None, typer.Option("--shifts", help="A folder holding `shift-eval` outputs.",
                                                **_folder)] = None,
    pres: Annotated[Path | None, typer.Option("--pres", help="A folder holding `preprocess` outputs (default: "
                                              "the paths the runs recorded).", **_folder)] = None,
    bpr_evals: Annotated[Path | None, typer.Option("--bpr-evals", help="A folder holding `bpr eval` outputs "
                                                   "(body-part scores against the synthetic ground truth).",
                                                   **_folder)] = None,
    preset: o.Preset = None, force: o.Force = False, overrides: dict | None = None,
) -> None:
    """report.md and a self-contained report.html: Tables 1-2, paired comparison, post-processing, Figs. 2-4, overlays.

    Runs, evaluations and shift tables are found in subfolders by their manifests and grouped by the
    dataset, spacing, patch setup and model those record. Example:
    locseg report --runs demo/runs --evals demo/eval --shifts demo/shift --out demo/report
    """
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..reporting import report

    cfg = resolve_config(ReportConfig, preset, overrides)
    with RichProgress() as progress:
        result = report(out, cfg, runs=runs, evals=evals, shifts=shifts, pres=pres, bpr_evals=bpr_evals, force=force,
                        progress=progress)
    from ..reporting.collect import collect

    _print_tables(result.collection or collect(runs, evals, shifts, pres, bpr_evals), cfg, console)
    if not result.did_work:
        console.print(f"report: [green]up to date[/] ({out})")
        return
    col = result.collection
    console.print(f"report: {len(col.runs)} run(s), {len(col.evals)} evaluation(s), {len(col.shifts)} shift "
                  f"table(s) -> {result.markdown}, {result.html}")
    for note in col.notes:
        console.print(f"  [yellow]note:[/] {note}")


def _print_tables(col, cfg: ReportConfig, console) -> None:
    """The result tables on screen (Tables 1 and 2, the paired comparison, the post-processing comparison)."""
    from rich.table import Table as RichTable

    from ..reporting.tables import bpr_table, paired_table, postprocess_table, table1, table2

    for table in (table1(col), table2(col), paired_table(col, cfg.bootstrap_rounds, cfg.bootstrap_seed),
                  postprocess_table(col), bpr_table(col)):
        if not table.rows:
            continue
        title, header, rows = table.on_screen()
        shown = RichTable(title=title, title_justify="left")
        for h in header:
            shown.add_column(h, overflow="fold")
        for row in rows:
            shown.add_row(*row)
        console.print(shown)


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(report_command)
