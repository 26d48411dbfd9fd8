"""reporting.paired and the report's paired table, on hand-made evaluate summaries."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from locseg_cli.errors import LocsegError
from locseg_cli.io.manifest import Manifest
from locseg_cli.reporting.collect import Collection, EvalRecord, RunRecord, Setup
from locseg_cli.reporting.paired import bootstrap_interval, class_groups, paired_difference
from locseg_cli.reporting.tables import paired_table

REPO = Path(__file__).resolve().parents[2]
AMBIGUOUS = ["2", "3"]  # of classes 1, 2, 3


def summary(per_case: dict[str, list[float]]) -> dict:
    """An evaluate summary.json of classes 1..3 (2 and 3 location-ambiguous): case id -> Dice per class."""
    labels = {"1": "liver", "2": "L1", "3": "L2"}
    return {"labels": labels, "foreground_keys": list(labels), "foreground_mean": {"Dice": math.nan},
            "mean": {k: {"Dice": math.nan} for k in labels},
            "class_groups": {"location_ambiguous": {"classes": AMBIGUOUS, "Dice": math.nan}},
            "metric_per_case": [{"case_id": cid, "metrics": {k: {"Dice": v} for k, v in zip(labels, dice)}}
                                for cid, dice in per_case.items()]}


def direct_bootstrap(values: list[float], rounds: int, seed: int) -> tuple[float, float]:
    """The percentile bootstrap written out: resample scans, mean, 2.5 and 97.5 percentiles."""
    v = np.asarray(values)
    means = [v[idx].mean() for idx in np.random.default_rng(seed).integers(0, len(v), size=(rounds, len(v)))]
    return tuple(np.percentile(means, [2.5, 97.5]))


NAN = math.nan
FIRST = summary({"s1": [0.9, 0.8, 0.7], "s2": [0.5, NAN, 0.6], "s3": [0.4, NAN, NAN], "s4": [0.7, 0.2, 0.3],
                 "s5": [0.6, 0.6, 0.6]})
SECOND = summary({"s1": [0.8, 0.5, 0.6], "s2": [0.6, 0.9, 0.7], "s3": [0.5, NAN, NAN], "s4": [0.7, 0.4, 0.3],
                  "s5": [0.6, 0.6, 0.6]})  # s5: a tie, favouring neither


def test_per_scan_differences_leave_out_nan_classes_and_count_scans_each_way():
    groups = class_groups(FIRST)
    assert groups == {"foreground": ["1", "2", "3"], "location_ambiguous": AMBIGUOUS}
    amb = paired_difference(FIRST, SECOND, groups["location_ambiguous"], Path("a"), Path("b"), rounds=500)
    # s2: L1 is NaN on one side (left out), s3: no ambiguous class on either side (no figure)
    assert amb.cases == ["s1", "s2", "s4", "s5"]
    assert amb.per_case == pytest.approx([0.2, -0.1, -0.1, 0.0])
    assert amb.mean == pytest.approx(0.0)
    assert (amb.favour_first, amb.favour_second) == (1, 2)
    assert amb.pairs == pytest.approx([0.3, 0.1, -0.1, -0.2, 0.0, 0.0, 0.0])
    assert amb.pair_share == pytest.approx(2 / 7)
    every = paired_difference(FIRST, SECOND, groups["foreground"], Path("a"), Path("b"), rounds=500)
    assert every.cases == ["s1", "s2", "s3", "s4", "s5"]
    assert every.per_case == pytest.approx([0.5 / 3, -0.2 / 2, -0.1, -0.2 / 3, 0.0])
    assert (every.favour_first, every.favour_second) == (1, 3)


def test_interval_is_the_direct_numpy_percentile_bootstrap_with_the_same_seed():
    values = list(np.random.default_rng(3).normal(0.1, 0.2, 16))
    for rounds, seed in ((10_000, 0), (2_000, 7)):
        low, high = bootstrap_interval(values, rounds, seed)
        assert (low, high) == pytest.approx(direct_bootstrap(values, rounds, seed), abs=1e-12)
        assert low < float(np.mean(values)) < high
    assert bootstrap_interval(values, 2_000, 7) != bootstrap_interval(values, 2_000, 8)
    d = paired_difference(FIRST, SECOND, ["1", "2", "3"], Path("a"), Path("b"), rounds=3_000, seed=5)
    assert (d.low, d.high) == pytest.approx(direct_bootstrap(d.per_case, 3_000, 5), abs=1e-12)
    assert all(math.isnan(x) for x in bootstrap_interval([]))


def test_a_scan_missing_on_one_side_is_an_error_naming_that_evaluation():
    fewer = summary({"s1": [0.9, 0.8, 0.7], "s2": [0.5, 0.1, 0.6]})
    with pytest.raises(LocsegError) as err:
        paired_difference(fewer, SECOND, ["1"], Path("eval/locbam"), Path("eval/baseline"))
    assert err.value.path == "eval/locbam" and "s3, s4" in err.value.message and "eval/baseline" in err.value.message
    with pytest.raises(LocsegError) as err:
        paired_difference(SECOND, fewer, ["1"], Path("eval/coordconv"), Path("eval/base"))
    assert err.value.path == "eval/base"


# -- the table: which baseline each evaluation is paired with --------------------------------------------
SMALL = Setup("Synth", (2.5, 4.0, 4.0), (32, 32, 32), 8)
LARGE = Setup("Synth", (2.5, 4.0, 4.0), (64, 64, 64), 1)


def record(name: str, setup: Setup, model: str, data: dict, location: str = "volume",
           ref: str = "raw") -> EvalRecord:
    run = RunRecord(Path("runs") / name, Manifest("train", {}, extra={"fold": 0}), setup, model, None, None,
                    location)
    return EvalRecord(Path("eval") / name, Path("eval") / name / "summary.json", data, run, "none",
                      Path("pred") / name, Path(ref))


def sixteen(shift: float, better: int) -> dict:
    """16 scans; on the ambiguous classes the first `better` scans gain `shift`, the others lose it."""
    return summary({f"s{i:02d}": [0.8, 0.5 + (shift if i < better else -shift), 0.5] for i in range(16)})


def test_paired_table_pairs_each_model_with_its_setups_baseline():
    base = sixteen(0.0, 0)
    col = Collection(evals=[
        record("b-small", SMALL, "baseline", base), record("l-small", SMALL, "locbam", sixteen(0.2, 12)),
        record("l-small-test", SMALL, "locbam", sixteen(0.1, 16), ref="test-raw"),  # no baseline on test-raw
        record("t-small", SMALL, "locbam (truth location)", sixteen(0.3, 16), location="truth"),
        record("l-large", LARGE, "locbam", sixteen(0.1, 8))])  # no baseline at 64³
    t = paired_table(col, rounds=2_000, seed=1)
    rows = [dict(zip(t.header, r)) for r in t.rows]
    assert [(r["model"], r["baseline"], r["class group"]) for r in rows] == [
        ("locbam", "baseline", "foreground"), ("locbam", "baseline", "location_ambiguous"),
        ("locbam (truth location)", "baseline (volume location)", "foreground"),
        ("locbam (truth location)", "baseline (volume location)", "location_ambiguous")]
    amb = rows[1]
    per_scan = [0.1] * 12 + [-0.1] * 4  # 0.2 on one of the two ambiguous classes
    low, high = direct_bootstrap(per_scan, 2_000, 1)
    assert (amb["scans"], amb["favour model"], amb["favour baseline"]) == ("16", "12/16", "4/16")
    assert amb["mean difference"] == f"{np.mean(per_scan):+.4f}" == "+0.0500"
    shown = [float(x) for x in amb["95 % interval"].strip("[]").split(", ")]
    assert shown == pytest.approx([low, high], abs=5e-5) and high > 0.05
    assert "-0.0000" not in amb["95 % interval"]  # a rounding residue of a zero bound
    assert rows[3]["favour model"] == "16/16" and rows[3]["mean difference"] == "+0.1500"
    assert [files for _, files in t.sources][0] == [Path("eval/b-small/summary.json"),
                                                    Path("eval/l-small/summary.json")]
    assert "2,000 resamples" in t.note and "seed 1" in t.note
    assert "`l-large`" in t.note and "`l-small-test`" in t.note  # omitted rows are named
    title, header, shown_rows = t.on_screen()  # the terminal's form: one-valued columns go into the title
    assert "dataset: Synth" in title and "patch: 32×32×32 (batch 8)" in title and "fold: 0" in title
    assert "dataset" not in header and "model" in header and "baseline" in header and "mean difference" in header
    assert [len(r) for r in shown_rows] == [len(header)] * len(t.rows)


def test_paired_table_refuses_evaluations_of_different_scans():
    col = Collection(evals=[record("b", SMALL, "baseline", sixteen(0.0, 0)),
                            record("l", SMALL, "locbam", summary({"s00": [0.8, 0.5, 0.5]}))])
    with pytest.raises(LocsegError, match="s01, s02, s03 and 12 more") as err:
        paired_table(col, rounds=200, seed=0)
    assert err.value.path == "eval/l"


def test_docs_script_prints_the_librarys_figures(tmp_path):
    for name, data in (("locbam", FIRST), ("baseline", SECOND)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(data))
    out = subprocess.run([sys.executable, str(REPO / "docs" / "scripts" / "compare_evals.py"), "paired",
                          str(tmp_path), "locbam", "baseline", "--exclude", "liver"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    amb = paired_difference(FIRST, SECOND, AMBIGUOUS, tmp_path, tmp_path)
    assert out[0] == out[1].replace("location-ambiguous", "all classes")  # liver left out: the same classes
    assert out[1] == (f"locbam - baseline, location-ambiguous: pairs {amb.pair_mean:+.3f} (0.29 first better); "
                      f"per case {amb.mean:+.3f} [{amb.low:+.3f}, {amb.high:+.3f}], 1/4 cases first better")
