"""`locseg report`: report.md and a self-contained report.html from the stages' output folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import write_text
from ..io.manifest import Manifest, StageWriter, folder_fingerprint
from ..progress import NullProgress, Progress
from . import figures, tables
from .collect import Collection, collect
from .config import ReportConfig
from .render import markdown_to_html, table_markdown

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    collection: Collection | None
    did_work: bool
    manifest: Manifest


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def build_markdown(col: Collection, out: Path, cfg: ReportConfig, inputs: dict[str, Path],
                   progress: Progress) -> tuple[str, list[str]]:
    """The report's markdown and the figure files it references (relative to `out`)."""
    md: list[str] = [f"# {cfg.title}", ""]
    given = ", ".join(f"--{k} `{_rel(v, out)}`" for k, v in inputs.items())
    md += [f"Made by locseg {__version__} from {len(col.runs)} run(s), {len(col.evals)} evaluation(s) and "
           f"{len(col.shifts)} shift evaluation(s) found under {given}. Every number below is read from the "
           "files listed under its table (paths relative to this report); rows are grouped by what the "
           "manifests record (dataset, spacing, patch setup, model), never by folder names.", ""]
    for note in col.notes:
        md.append(f"- {note}")
    if col.notes:
        md.append("")
    figs: list[str] = []

    def section(title: str, table: tables.Table | None, missing: str) -> None:
        md.extend([f"## {title}", ""])
        if table is None or not table.rows:
            md.extend([f"Skipped: {missing}", ""])
            return
        md.extend(table_markdown(table, out))

    def figure(title: str, name: str, draw, missing: str, sources: list[Path] | None = None) -> None:
        md.extend([f"## {title}", ""])
        path = out / "figures" / name
        if not draw(path):
            md.extend([f"Skipped: {missing}", ""])
            return
        figs.append(f"figures/{name}")
        md.extend([f"![{title}](figures/{name})", ""])
        if sources:
            md.extend(["Sources of the figure:", ""] + [f"- `{_rel(p, out)}`" for p in sources] + [""])

    progress.start("report", 8)
    section("Runs", tables.runs_table(col), "no `train` outputs found (--runs).")
    section("Evaluations", tables.evaluations_table(col), "no `evaluate` or `shift-eval` outputs found.")
    progress.advance()
    no_evals = "no `evaluate` outputs of these runs' predictions found (--evals)."
    section("Table 1: models × datasets", tables.table1(col), no_evals)
    progress.advance()
    section("Table 2: spacing × patch setup, baseline vs LocBAM", tables.table2(col),
            no_evals if not col.evals else "no evaluation of a baseline or LocBAM run.")
    progress.advance()
    groups = tables.class_group_table(col)
    if groups is not None:
        section("Class groups (location-ambiguous vs other classes)", groups, "")
    section("Paired comparison against the baseline (per scan)",
            tables.paired_table(col, cfg.bootstrap_rounds, cfg.bootstrap_seed),
            "needs evaluations of a baseline and another model of the same setup on the same scans.")
    section("Post-processing comparison", tables.postprocess_table(col),
            "no evaluation of `postprocess` outputs found (--evals).")
    if col.bpr_evals:
        section("Body part regression", tables.bpr_table(col), "")
    progress.advance()
    figure("Figure 2: validation Dice curves", "fig2_validation_dice.png",
           lambda p: figures.validation_curves(col, p, cfg.dpi), "no validation records in the runs' metrics.jsonl.",
           [r.metrics for r in col.runs if r.validation_curve()])
    progress.advance()
    gains = tables.class_gains(col)
    figure("Figure 3: class-wise Dice gain over the baseline", "fig3_class_gain.png",
           lambda p: figures.class_gain_bars(gains, p, cfg.dpi),
           "needs evaluations of a baseline and another model in the same setup.")
    if gains:
        md.extend(table_markdown(tables.class_gain_table(col, gains), out))
    progress.advance()
    figure("Figure 4: Dice vs location shift", "fig4_shift.png", lambda p: figures.shift_curves(col, p, cfg.dpi),
           "no axial `shift-eval` outputs found (--shifts).")
    if col.shifts:
        md.extend(table_markdown(tables.shift_table(col), out))
    progress.advance()
    md.extend(["## Qualitative overlays", ""])
    drawn = 0
    for i, setup in enumerate(sorted({e.run.setup for e in tables.raw_evals(col)})):
        name = f"overlay_{i + 1}.png"
        info = figures.overlays(col, setup, out / "figures" / name, cfg.overlay_view, cfg.dpi)
        if info is None:
            continue
        drawn += 1
        figs.append(f"figures/{name}")
        dice = ", ".join(f"{m} {tables.fmt_dice(v)}" for m, v in info["dice"].items())
        md.extend([f"### {setup.label}", "", f"![overlay {setup.label}](figures/{name})", "",
                   f"Case `{info['case']}`, {info['view']} slice {info['index']} (canonical orientation); "
                   f"foreground mean Dice of this case: {dice}.", "",
                   "Sources of the figure:", ""] +
                  [f"- `{_rel(p, out)}`" for p in [*info["files"], *info["summaries"]]] + [""])
    if not drawn:
        md.extend([f"Skipped: {no_evals}", ""])
    progress.advance()
    progress.stop()
    return "\n".join(md), figs


def report(out: str | Path, cfg: ReportConfig, runs: str | Path | None = None, evals: str | Path | None = None,
           shifts: str | Path | None = None, pres: str | Path | None = None,
           bpr_evals: str | Path | None = None, force: bool = False,
           progress: Progress | None = None) -> ReportResult:
    """Collect the stage outputs under the given folders and write report.md, report.html and figures/."""
    progress = progress or NullProgress()
    out = Path(out)
    given = {k: Path(v) for k, v in (("runs", runs), ("evals", evals), ("shifts", shifts), ("pres", pres),
                                     ("bpr-evals", bpr_evals)) if v is not None}
    if not any(k in given for k in ("runs", "evals", "shifts")):
        raise LocsegError("give at least one of --runs, --evals, --shifts")
    for k, v in given.items():
        if not v.is_dir():
            raise LocsegError(f"--{k}: not a folder", v)
    inputs = {k: (v, folder_fingerprint(v)) for k, v in given.items()}
    with StageWriter("report", out, config_dict(cfg), inputs, force) as w:
        if w.up_to_date:
            return ReportResult(out / REPORT_MD, out / REPORT_HTML, None, False, w.keep_previous())
        col = collect(given.get("runs"), given.get("evals"), given.get("shifts"), given.get("pres"),
                      given.get("bpr-evals"))
        if not (col.runs or col.evals or col.shifts):
            raise LocsegError("no `train`, `evaluate` or `shift-eval` outputs found under "
                              + ", ".join(str(v) for v in given.values()))
        markdown, figs = build_markdown(col, out.resolve(), cfg, {k: v.resolve() for k, v in given.items()},
                                        progress)
        write_text(w.path(REPORT_MD), markdown + "\n")
        write_text(w.path(REPORT_HTML), markdown_to_html(markdown, out, cfg.title))
        files = {"markdown": REPORT_MD, "html": REPORT_HTML, **{f"figure_{i}": f for i, f in enumerate(figs)}}
        w.add_case("report", files, {"runs": len(col.runs), "evaluations": len(col.evals),
                                     "shift_evaluations": len(col.shifts)}, w.case_fingerprint("report"))
        man = w.finish({"notes": col.notes,
                        "models": col.models(),
                        "datasets": sorted({r.setup.dataset for r in col.runs})})
    return ReportResult(out / REPORT_MD, out / REPORT_HTML, col, True, man)


__all__ = ["report", "ReportResult", "REPORT_MD", "REPORT_HTML", "build_markdown"]
