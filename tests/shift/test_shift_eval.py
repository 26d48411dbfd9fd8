"""shift-eval: Dice of the validation fold per location shift, cached per shift."""

from __future__ import annotations

import json

import pytest
import torch
from synthdata import write_dataset

from locseg_cli.app import main
from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.shift import SHIFT_JSON, ShiftEvalConfig, shift_eval
from locseg_cli.training import TrainConfig, train

TINY = {"features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 4, "epochs": 1,
        "iterations_per_epoch": 4, "val_every": 0, "workers": 0, "locbam_reduction": 4, "threads": 1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("shift")
    write_dataset(root / "raw", n=4)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    for model in ("baseline", "coordconv"):
        train(root / "pre", root / model, resolve_config(TrainConfig, None, {**TINY, "model": model}))
    return root


def _cfg(**overrides) -> ShiftEvalConfig:
    return resolve_config(ShiftEvalConfig, None, {"threads": 1, **overrides})


def _per_case(folder, shift) -> dict:
    return json.loads((folder / "shifts" / f"shift-{shift:g}.json").read_text())["per_case"]


def test_shift_zero_reproduces_the_runs_validation_and_baseline_is_flat(runs, tmp_path):
    result = shift_eval(runs / "baseline", runs / "pre", tmp_path / "b", _cfg(shifts="0,50,100"))
    run_man = json.loads((runs / "baseline" / "manifest.json").read_text())
    table = json.loads((tmp_path / "b" / SHIFT_JSON).read_text())
    assert table == json.loads(json.dumps(result.table))
    assert table["model"] == "baseline" and table["cases"] == run_man["extra"]["val_cases"]
    assert [r["shift"] for r in table["shifts"]] == [0, 50, 100]
    # shift 0 is exactly the training stage's full-volume validation of the best checkpoint
    assert table["shifts"][0]["mean_dice"] == pytest.approx(run_man["extra"]["best_mean_dice"], abs=1e-9)
    assert set(table["shifts"][0]["dice"]) == {"upper", "lower"}
    # a model without location cannot notice the shift
    assert _per_case(tmp_path / "b", 0) == _per_case(tmp_path / "b", 100)


def test_shift_reaches_the_model_axial_and_all_axes_differ(runs, tmp_path):
    shift_eval(runs / "coordconv", runs / "pre", tmp_path / "axial", _cfg(shifts="0,100"))
    shift_eval(runs / "coordconv", runs / "pre", tmp_path / "all", _cfg(shifts="0,100", axes="all"))
    assert _per_case(tmp_path / "axial", 0) == _per_case(tmp_path / "all", 0)
    assert _per_case(tmp_path / "axial", 0) != _per_case(tmp_path / "axial", 100)
    assert _per_case(tmp_path / "axial", 100) != _per_case(tmp_path / "all", 100)
    man = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert man["stage"] == "shift-eval" and man["config"]["axes"] == "all" and man["extra"]["shifts"] == [0, 100]


def test_rerun_with_more_shifts_computes_only_the_new_ones(runs, tmp_path):
    out = tmp_path / "c"
    first = shift_eval(runs / "coordconv", runs / "pre", out, _cfg(shifts="0,25"))
    assert first.computed == [0, 25]
    stamp = (out / "shifts" / "shift-0.json").stat().st_mtime_ns
    second = shift_eval(runs / "coordconv", runs / "pre", out, _cfg(shifts="25,0,10"))
    assert second.computed == [10]
    assert (out / "shifts" / "shift-0.json").stat().st_mtime_ns == stamp
    assert [r["shift"] for r in second.table["shifts"]] == [0, 10, 25]
    assert second.table["shifts"][0] == first.table["shifts"][0]
    assert shift_eval(runs / "coordconv", runs / "pre", out, _cfg(shifts="0,10,25")).computed == []
    forced = shift_eval(runs / "coordconv", runs / "pre", out, _cfg(shifts="0,10,25"), force=True)
    assert forced.computed == [0, 10, 25] and forced.table == second.table


def test_bad_shifts_and_foreign_preprocessing_are_one_line_errors(runs, tmp_path, capsys):
    with pytest.raises(LocsegError, match=r"within 0\.\.100 %, got 150"):
        _cfg(shifts="0,150")
    with pytest.raises(SystemExit) as exit_info:
        main(["shift-eval", "--run", str(runs / "baseline"), "--pre", str(runs / "pre"), "--out",
              str(tmp_path / "x"), "--shifts", "-5,10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "within 0..100 %, got -5" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
    preprocess(runs / "raw", tmp_path / "pre3", resolve_config(PreprocessConfig, None, {"spacing": "3,3,3",
                                                                                        "folds": 2}))
    with pytest.raises(LocsegError, match="not the one the run was trained on"):
        shift_eval(runs / "baseline", tmp_path / "pre3", tmp_path / "y", _cfg(shifts="0"))


def test_cli_writes_the_table(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["shift-eval", "--run", str(runs / "coordconv"), "--pre", str(runs / "pre"), "--out", str(tmp_path / "z"),
              "--shifts", "0,5", "--threads", "1"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "coordconv: Dice per axial shift" in out and "2 shift(s) computed" in out
    assert [r["shift"] for r in json.loads((tmp_path / "z" / SHIFT_JSON).read_text())["shifts"]] == [0, 5]


def test_a_raw_cohort_is_scored_as_its_preprocessed_cases_are(runs, tmp_path):
    # --data prepares raw images and labels with the run's own plan: on the run's validation cases it must
    # give the Dice that the --pre path gives on their preprocessed files, and it scores every labelled case.
    via_pre = shift_eval(runs / "coordconv", runs / "pre", tmp_path / "pre", _cfg(shifts="0,50"))
    via_raw = shift_eval(runs / "coordconv", None, tmp_path / "raw", _cfg(shifts="0,50"), data=runs / "raw")
    assert len(via_raw.table["cases"]) == 4 and set(via_pre.table["cases"]) < set(via_raw.table["cases"])
    for shift in (0, 50):
        raw = _per_case(tmp_path / "raw", shift)
        for cid, counts in _per_case(tmp_path / "pre", shift).items():
            for name, c in counts.items():
                assert raw[cid][name]["Dice"] == pytest.approx(c["Dice"], abs=1e-6, nan_ok=True), (cid, name, shift)
    assert shift_eval(runs / "coordconv", None, tmp_path / "raw", _cfg(shifts="0,50"), data=runs / "raw").computed == []
    with pytest.raises(LocsegError, match="exactly one of --pre"):
        shift_eval(runs / "coordconv", runs / "pre", tmp_path / "both", _cfg(shifts="0"), data=runs / "raw")


def test_a_cohort_in_another_layout_is_read_in_its_own_and_its_label_values_checked(runs, tmp_path):
    # the same cases written in the `folder` layout score as the run's nnU-Net layout does; a cohort whose
    # label table gives a value another name is refused in one line
    write_dataset(tmp_path / "folder", n=4, layout="folder")
    nnunet = shift_eval(runs / "coordconv", None, tmp_path / "a", _cfg(shifts="0"), data=runs / "raw")
    folder = shift_eval(runs / "coordconv", None, tmp_path / "b", _cfg(shifts="0"), data=tmp_path / "folder")
    assert set(folder.table["cases"]) == set(nnunet.table["cases"])
    assert _per_case(tmp_path / "b", 0) == _per_case(tmp_path / "a", 0)
    # a run preprocessed with its layout named (--dataset nnunet) opens a cohort in another layout by detecting it
    import dataclasses

    from locseg_cli.io.manifest import read_manifest
    from locseg_cli.preprocessing.plan import PreprocessPlan
    from locseg_cli.shift.run import _RawCases

    plan = PreprocessPlan.of(read_manifest(runs / "pre", "preprocess"), runs / "pre")
    named = dataclasses.replace(plan, config=dataclasses.replace(plan.config, dataset="nnunet"))
    assert named.dataset_layout == "nnunet"
    assert sorted(_RawCases(named, tmp_path / "folder").ids) == sorted(folder.table["cases"])
    write_dataset(tmp_path / "swapped", n=1, layout="folder", labels={0: "background", 1: "lower", 2: "upper"})
    with pytest.raises(LocsegError, match="label 1 is 'lower' in this cohort but 'upper' in the run"):
        shift_eval(runs / "coordconv", None, tmp_path / "c", _cfg(shifts="0"), data=tmp_path / "swapped")

