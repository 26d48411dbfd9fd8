"""report: every table cell is recomputed from the files the report lists beside its table."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from synthdata import write_dataset

from locseg_cli.app import main
from locseg_cli.config import resolve_config
from locseg_cli.evaluation import EvaluateConfig, evaluate
from locseg_cli.inference import InferConfig, infer
from locseg_cli.postprocessing.config import PostprocessConfig
from locseg_cli.postprocessing.run import postprocess
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.reporting import ReportConfig, report
from locseg_cli.shift import ShiftEvalConfig, shift_eval
from locseg_cli.training import TrainConfig, train

TINY = {"features": "4,4,8,8,16,4", "batch_size": 4, "epochs": 2, "iterations_per_epoch": 2, "val_every": 2,
        "workers": 0, "locbam_reduction": 4, "threads": 1}
# folder names say nothing true: the report must group by what the manifests record
RUNS = {"r1": ("locbam", "16,16,32"), "r2": ("baseline", "16,16,32"), "r3": ("coordconv", "16,16,32"),
        "r4": ("locbam", "16,32,32"), "r5": ("baseline", "16,32,32")}


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    write_dataset(root / "raw", n=4, class_groups={"first": (1,), "both": (1, 2)})
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    for name, (model, patch) in RUNS.items():
        train(root / "pre", root / "runs" / name, resolve_config(TrainConfig, None, {**TINY, "model": model,
                                                                                     "patch_size": patch}))
        infer(root / "runs" / name, root / "pred" / name, resolve_config(InferConfig, None, {"threads": 1,
                                                                                            "subset": "val"}),
              pre=root / "pre")
        evaluate(root / "pred" / name, root / "raw", root / "eval" / name,
                 resolve_config(EvaluateConfig, None, {"surface": False}))
    postprocess(root / "pred" / "r1", root / "pp", resolve_config(PostprocessConfig, None, {"method": "lcf"}))
    evaluate(root / "pp", root / "raw", root / "eval" / "x", resolve_config(EvaluateConfig, None, {"surface": False}))
    for name in ("r1", "r3", "r4", "r5"):
        shift_eval(root / "runs" / name, root / "pre", root / "shift" / name,
                   resolve_config(ShiftEvalConfig, None, {"shifts": "0,50,100", "threads": 1}))
    _bpr_eval(root)
    result = report(root / "report", resolve_config(ReportConfig, None, {"title": "Tiny"}), runs=root / "runs",
                    evals=root / "eval", shifts=root / "shift", bpr_evals=root / "bpr-eval")
    assert result.did_work
    return root


BPR_OFFSET = 0.3  # the "bpreg" scores below are the true body position plus this


def _bpr_eval(root: Path) -> None:
    """bpreg-style score files (truth + BPR_OFFSET) -> `bpr import` -> `bpr eval` against bodypos files."""
    import nibabel as nib

    (root / "raw" / "bodypos").mkdir()
    (root / "bpreg").mkdir()
    for image in sorted((root / "raw" / "imagesTr").glob("*_0000.nii.gz")):
        cid = image.name[: -len("_0000.nii.gz")]
        affine = nib.load(str(image)).affine
        k = int(np.argmax(np.abs(affine[2, :3])))
        z = affine[2, k] * np.arange(nib.load(str(image)).shape[k]) + affine[2, 3]
        truth = 30.0 + 0.1 * z
        (root / "raw" / "bodypos" / f"{cid}.json").write_text(json.dumps(
            {"axial_axis": k, "z_world_mm": z.tolist(), "scores": truth.tolist(), "landmarks": {}}))
        up = np.sort(truth) + BPR_OFFSET  # bpreg lists slices inferior first
        (root / "bpreg" / f"{cid}_0000.json").write_text(json.dumps(
            {"cleaned slice scores": up.tolist(), "unprocessed slice scores": up.tolist(),
             "z": (np.sort(z) - z.min()).tolist(), "valid z-spacing": 1.0}))
    for cmd in (["bpr", "import", "--bpreg-dir", str(root / "bpreg"), "--data", str(root / "raw"),
                 "--out", str(root / "bpr")],
                ["bpr", "eval", "--scores", str(root / "bpr"), "--data", str(root / "raw"),
                 "--out", str(root / "bpr-eval" / "x")]):
        with pytest.raises(SystemExit) as e:
            main(cmd)
        assert e.value.code == 0, cmd


# -- parsing report.md ----------------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_tables(markdown: str) -> dict[str, dict]:
    """{key: {"header", "rows", "sources": [(label, [files])]}} for every table with a sources list."""
    lines = markdown.splitlines()
    tables, i = {}, 0
    while i < len(lines):
        if lines[i].startswith("|"):
            header = _cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            while not lines[i].startswith("Sources of "):
                i += 1
            key = lines[i][len("Sources of "):-1]
            i += 2
            sources = []
            while i < len(lines) and lines[i].startswith("- "):
                label, _, files = lines[i][2:].rpartition(": ")
                sources.append((label, re.findall(r"`([^`]+)`", files)))
                i += 1
            tables[key] = {"header": header, "rows": rows, "sources": sources}
        i += 1
    return tables


# -- an independent recomputation from the listed files -------------------------------------------------
def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _run_of_pred(pred: Path) -> tuple[Path, str]:
    """(run folder, post-processing) behind a prediction folder, by its manifests."""
    man = _json(pred / "manifest.json")
    if man["stage"] == "postprocess":
        run, _ = _run_of_pred(Path(man["inputs"]["pred"]["path"]))
        return run, "+".join(man["config"]["method"])
    return Path(man["config"]["run"]), "none"


def _summary_facts(summary: Path) -> dict:
    run, method = _run_of_pred(Path(_json(summary.parent / "manifest.json")["inputs"]["pred"]["path"]))
    return {**_run_facts(run / "manifest.json"), "method": method,
            "dice": _json(summary)["foreground_mean"]["Dice"], "summary": _json(summary)}


def _run_facts(manifest: Path) -> dict:
    man = _json(manifest)
    pextra = man["extra"]["preprocess"]["extra"]
    patch = man["config"]["patch_size"]
    return {"model": man["config"]["model"], "dataset": pextra["dataset"]["name"],
            "spacing": "×".join(f"{s:g}" for s in pextra["spacing"]) + " mm",
            "patch": "×".join(map(str, patch)) + f" (batch {man['config']['batch_size']})", "patch_size": patch,
            "manifest": man}


def _dice(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.4f}"


def _mean(vals) -> float:
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def test_every_table_cell_traces_to_its_listed_files(stages):
    out = stages / "report"
    tables = parse_tables((out / "report.md").read_text())
    assert set(tables) == {"runs", "evaluations", "table1", "table2", "class_groups", "paired", "postprocess", "fig3",
                           "fig4", "bpr"}
    checked = 0
    for key, t in tables.items():
        assert len(t["sources"]) == len(t["rows"]) > 0, key
        for row, (label, files) in zip(t["rows"], t["sources"]):
            paths = [(out / f).resolve() for f in files]
            assert paths and all(p.is_file() for p in paths), (key, label)
            cells = dict(zip(t["header"], row))
            summaries = [_summary_facts(p) for p in paths if p.name == "summary.json"]
            if key == "runs":
                facts = _run_facts(paths[0])
                extra = facts["manifest"]["extra"]
                expected = {"model": facts["model"], "dataset": facts["dataset"], "spacing": facts["spacing"],
                            "patch": facts["patch"], "fold": str(extra["fold"]),
                            "validation cases": str(len(extra["val_cases"])),
                            "best validation Dice": _dice(extra["best_mean_dice"])}
            elif key == "evaluations":  # the checkpoint as the predicting stage recorded it
                man = _json(paths[0])
                if cells["kind"] == "shift-eval":
                    expected = {"checkpoint": man["config"]["checkpoint"]}
                else:
                    pm = _json(Path(man["inputs"]["pred"]["path"]) / "manifest.json")
                    while pm["stage"] != "infer":
                        pm = _json(Path(pm["inputs"]["pred"]["path"]) / "manifest.json")
                    expected = {"checkpoint": pm["config"]["checkpoint"]}
                assert expected["checkpoint"] == "last"  # the default: the final weights, as nnU-Net
            elif key == "table1":
                assert {s["model"] for s in summaries} == {cells["model"]}
                assert {(s["spacing"], s["patch"]) for s in summaries} == {(cells["spacing"], cells["patch"])}
                expected = {d: _dice(_mean([s["dice"] for s in summaries if s["dataset"] == d]))
                            for d in t["header"][3:]}
            elif key == "table2":
                run = _run_facts(next(p for p in paths if p.parent.parent.name == "runs"))
                pre = _json(next(p for p in paths if p.parent.name == "pre"))
                ptvc = np.prod(run["patch_size"]) / np.prod(pre["extra"]["median_shape"])
                base = _mean([s["dice"] for s in summaries if s["model"] == "baseline"])
                loc = _mean([s["dice"] for s in summaries if s["model"] == "locbam"])
                expected = {"patch": run["patch"], "PtVC": f"{100 * ptvc:.2f}%", "baseline": _dice(base),
                            "LocBAM": _dice(loc), "gain": f"{100 * (loc - base) / base:+.1f}%"}
            elif key == "class_groups":  # recomputed from the per-class means, not the summary's groups
                def group(s: dict, values: list[int]) -> float:
                    return _mean([s["summary"]["mean"][str(v)]["Dice"] for v in values])
                mine = [s for s in summaries if s["model"] == cells["model"]]
                base = [s for s in summaries if s["model"] == "baseline"]
                assert mine and {(s["spacing"], s["patch"]) for s in summaries} == {(cells["spacing"], cells["patch"])}
                expected = {}
                for g, values in (("both", [1, 2]), ("first", [1])):
                    v = _mean([group(s, values) for s in mine])
                    expected[g] = _dice(v)
                    expected[f"{g} − baseline"] = ("n/a" if cells["model"] == "baseline"
                                                   else f"{v - _mean([group(s, values) for s in base]):+.4f}")
            elif key == "paired":  # per scan over the group's classes finite on both sides, then bootstrapped
                (base,) = [s for s in summaries if s["model"] == "baseline"]
                (mine,) = [s for s in summaries if s["model"] != "baseline"]
                classes = {"foreground": ["1", "2"], "both": ["1", "2"], "first": ["1"]}[cells["class group"]]
                dice = [{c["case_id"]: c["metrics"] for c in s["summary"]["metric_per_case"]} for s in (mine, base)]
                diffs = []
                for case, metrics in dice[0].items():
                    d = [metrics[k]["Dice"] - dice[1][case][k]["Dice"] for k in classes
                         if not math.isnan(metrics[k]["Dice"]) and not math.isnan(dice[1][case][k]["Dice"])]
                    if d:
                        diffs.append(sum(d) / len(d))
                d = np.asarray(diffs)
                means = d[np.random.default_rng(0).integers(0, len(d), (10_000, len(d)))].mean(axis=1)
                low, high = np.percentile(means, [2.5, 97.5])
                expected = {"model": mine["model"], "patch": base["patch"], "scans": str(len(d)),
                            "mean difference": f"{d.mean():+.4f}", "95 % interval": f"[{low:+.4f}, {high:+.4f}]",
                            "favour model": f"{(d > 0).sum()}/{len(d)}", "favour baseline": f"{(d < 0).sum()}/{len(d)}"}
                assert mine["patch"] == base["patch"] and len(d) == 2  # the two held-out scans of fold 0
            elif key == "postprocess":
                expected = {m: _dice(_mean([s["dice"] for s in summaries if s["method"] == m]))
                            for m in t["header"][4:]}
                assert expected["lcf"] != "n/a" and expected["none"] != "n/a"
            elif key == "fig3":
                pre = _json(next(p for p in paths if p.name == "manifest.json"))
                lab = next(k for k, v in summaries[0]["summary"]["labels"].items() if v == cells["class"])
                voxels = np.mean([c["meta"]["class_voxels"].get(lab, 0) for c in pre["cases"].values()])
                per_model = {s["model"]: s["summary"]["mean"][lab]["Dice"] for s in summaries}
                expected = {"voxels": f"{voxels:.0f}", "baseline": _dice(per_model["baseline"]),
                            **{f"Δ {m}": f"{per_model[m] - per_model['baseline']:+.4f}"
                               for m in per_model if m != "baseline"}}
            elif key == "fig4":
                table = _json(paths[0])
                facts = _run_facts(Path(table["run"]) / "manifest.json")
                expected = {"model": table["model"], "patch": facts["patch"],
                            **{f"{r['shift']:g}%": _dice(r["mean_dice"]) for r in table["shifts"]}}
            elif key == "bpr":
                pooled = _json(paths[0])["pooled"]
                loc = pooled["location"]
                expected = {"cases": str(pooled["cases"]), "slices": str(pooled["slices"]), "MAE": f"{loc['mae']:.2f}",
                            "max abs error": f"{loc['max_abs_error']:.2f}", "Spearman ρ": f"{loc['spearman']:.4f}",
                            "bias": f"{loc['bias']:+.2f}"}
                # and what the scores were made to be: the truth plus BPR_OFFSET everywhere
                assert (cells["cases"], cells["MAE"], cells["bias"], cells["Spearman ρ"]) == (
                    "4", f"{BPR_OFFSET:.2f}", f"+{BPR_OFFSET:.2f}", "1.0000")
            for col, value in expected.items():
                assert cells[col] == value, (key, label, col)
                checked += 1
    assert checked > 50
    # grouping came from the manifests: both patch setups, each with its own models
    assert sorted(r[2] for r in tables["table2"]["rows"]) == ["16×16×32 (batch 4)", "16×32×32 (batch 4)"]
    assert [r[0] for r in tables["table1"]["rows"]] == ["baseline", "baseline", "coordconv", "locbam", "locbam"]
    assert [(r[0], r[4], r[7]) for r in tables["paired"]["rows"]] == [
        (m, p, g) for m, p in (("coordconv", "16×16×32 (batch 4)"), ("locbam", "16×16×32 (batch 4)"),
                               ("locbam", "16×32×32 (batch 4)")) for g in ("foreground", "first", "both")]
    assert [(r[0], r[3]) for r in tables["fig4"]["rows"]] == [
        ("coordconv", "16×16×32 (batch 4)"), ("locbam", "16×16×32 (batch 4)"), ("baseline", "16×32×32 (batch 4)"),
        ("locbam", "16×32×32 (batch 4)")]


def test_html_is_self_contained_and_figures_are_pngs(stages):
    out = stages / "report"
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"figures/fig2_validation_dice.png", "figures/fig3_class_gain.png", "figures/fig4_shift.png",
            "figures/overlay_1.png", "figures/overlay_2.png"} == set(images)
    for img in images:
        assert (out / img).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.findall(r'src="([^"]{0,22})', html) == ["data:image/png;base64,"] * len(images)
    assert html.count("<table>") == md.count("\n|---")
    assert "case_000" in html and "Skipped" not in md


def test_partial_inputs_skip_with_a_note_and_rerun_is_up_to_date(stages, tmp_path):
    cfg = resolve_config(ReportConfig)
    first = report(tmp_path / "r", cfg, runs=stages / "runs")
    md = first.markdown.read_text()
    assert "## Runs" in md and "fig2_validation_dice.png" in md
    assert md.count("Skipped:") == 8  # evaluations, tables 1, 2, paired, post-processing, figures 3, 4, overlays
    assert not report(tmp_path / "r", cfg, runs=stages / "runs").did_work
    # shift tables alone still find their runs through the manifests
    only = report(tmp_path / "s", cfg, shifts=stages / "shift")
    assert len(only.collection.runs) == 4 and "fig4_shift.png" in only.markdown.read_text()


def test_runs_with_another_axial_location_source_are_their_own_rows(stages, tmp_path):
    """The location source is read from what a run's manifest records of its preprocessed data."""
    runs = tmp_path / "runs"
    for name, location in (("a", None), ("b", "truth")):
        man = json.loads((stages / "runs" / "r1" / "manifest.json").read_text())  # LocBAM, 16x16x32
        if location:
            man["extra"]["preprocess"]["config"]["location"] = location
        (runs / name).mkdir(parents=True)
        (runs / name / "manifest.json").write_text(json.dumps(man))
    result = report(tmp_path / "r", resolve_config(ReportConfig), runs=runs)
    assert sorted(r.model for r in result.collection.runs) == ["locbam (truth location)", "locbam (volume location)"]
    assert "| locbam (truth location) |" in result.markdown.read_text()


def test_cli_report_and_its_errors(stages, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--runs", str(stages / "runs"), "--evals", str(stages / "eval"), "--out",
              str(tmp_path / "rep"), "--title", "CLI title", "--overlay-view", "axial"])
    assert exit_info.value.code == 0
    assert "5 run(s), 6 evaluation(s)" in capsys.readouterr().out.replace("\n", " ")
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# CLI title")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--out", str(tmp_path / "none")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "give at least one of --runs, --evals, --shifts" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--runs", str(stages / "raw"), "--out", str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert "no `train`, `evaluate` or `shift-eval` outputs found" in capsys.readouterr().err
