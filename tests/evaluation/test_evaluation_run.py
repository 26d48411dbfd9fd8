"""`evaluate` over folders: nnU-Net-shaped summary, reference layouts, geometry checks, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from locseg_cli.app import main
from locseg_cli.datasets.writers import DatasetWriter
from locseg_cli.errors import LocsegError
from locseg_cli.evaluation import EvaluateConfig, case_metrics, evaluate
from locseg_cli.io.manifest import StageWriter
from locseg_cli.io.nifti import save_volume

AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])
SPACING = (0.8, 0.8, 2.5)  # along the array's axes, from the affine


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = np.zeros((16, 14, 10), np.uint8)
    ref[3:10, 2:9, 2:7] = 1
    ref[9:14, 5:12, 4:9] = 2
    pred = ref.copy()
    pred[rng.integers(0, 16, 20), rng.integers(0, 14, 20), rng.integers(0, 10, 20)] = 2
    pred[3:5] = np.where(pred[3:5] == 1, 0, pred[3:5])
    return pred, ref


@pytest.fixture()
def raw_and_pred(tmp_path):
    raw = tmp_path / "raw"
    w = DatasetWriter(raw, {0: "background", 1: "liver", 2: "spleen"})
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    arrays = {}
    for i, cid in enumerate(["case_a", "case_b"]):
        pred, ref = _case(i)
        w.write_case(cid, np.zeros(ref.shape, np.float32), ref, AFFINE)
        save_volume(pred_dir / f"{cid}.nii.gz", pred, AFFINE)
        arrays[cid] = (pred, ref)
    w.finish()
    return raw, pred_dir, arrays


def test_summary_has_nnunet_shape_and_matches_case_metrics(raw_and_pred, tmp_path):
    raw, pred_dir, arrays = raw_and_pred
    cfg = EvaluateConfig(nsd_tolerance_mm=1.0)
    summary = evaluate(pred_dir, raw, tmp_path / "eval", cfg)
    on_disk = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert on_disk["mean"].keys() == {"1", "2"}
    assert summary["labels"] == {"1": "liver", "2": "spleen"}
    assert [c["case_id"] for c in on_disk["metric_per_case"]] == ["case_a", "case_b"]
    for entry in on_disk["metric_per_case"]:
        pred, ref = arrays[entry["case_id"]]
        expected = case_metrics(pred, ref, [1, 2], SPACING, cfg)
        assert entry["prediction_file"].endswith(f"{entry['case_id']}.nii.gz")
        assert entry["reference_file"].endswith(f"labelsTr/{entry['case_id']}.nii.gz")
        for key in ("1", "2"):
            for m in ("Dice", "IoU", "TP", "FP", "FN", "TN", "n_pred", "n_ref", "NSD", "HD95"):
                assert entry["metrics"][key][m] == pytest.approx(expected[key][m])
    dice_1 = [e["metrics"]["1"]["Dice"] for e in on_disk["metric_per_case"]]
    assert on_disk["mean"]["1"]["Dice"] == pytest.approx(np.mean(dice_1))
    assert on_disk["foreground_mean"]["Dice"] == pytest.approx(
        (on_disk["mean"]["1"]["Dice"] + on_disk["mean"]["2"]["Dice"]) / 2)
    assert 0 < on_disk["mean"]["1"]["Dice"] < 1
    manifest = json.loads((tmp_path / "eval" / "manifest.json").read_text())
    assert manifest["stage"] == "evaluate" and manifest["complete"]


def test_rerun_is_up_to_date_and_regions_change_the_output(raw_and_pred, tmp_path):
    raw, pred_dir, arrays = raw_and_pred
    out = tmp_path / "eval"
    first = evaluate(pred_dir, raw, out, EvaluateConfig(surface=False))
    mtime = (out / "summary.json").stat().st_mtime_ns
    again = evaluate(pred_dir, raw, out, EvaluateConfig(surface=False))
    assert again == json.loads(json.dumps(first)) and (out / "summary.json").stat().st_mtime_ns == mtime
    cfg = EvaluateConfig(surface=False, labels=[2], regions={"organs": [1, 2]})
    s = evaluate(pred_dir, raw, out, cfg)
    assert s["mean"].keys() == {"2", "organs"}
    assert s["foreground_keys"] == ["organs"]
    pred, ref = arrays["case_a"]
    assert s["metric_per_case"][0]["metrics"]["organs"]["TP"] == int(((pred > 0) & (ref > 0)).sum())


def test_plain_reference_folder_and_prediction_manifest(tmp_path):
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    pred_dir = tmp_path / "pred"
    pred, ref = _case(3)
    save_volume(ref_dir / "c1.nii.gz", ref, AFFINE)
    save_volume(ref_dir / "c2.nii.gz", ref, AFFINE)
    with StageWriter("infer", pred_dir, {"run": "r"}, {}) as w:
        save_volume(w.path("c1.nii.gz"), pred, AFFINE)
        w.add_case("c1", {"prediction": "c1.nii.gz"}, {"spacing": list(SPACING)}, "fp")
        w.finish({"labels": {"0": "background", "1": "kidney", "2": "tumor"}})
    s = evaluate(pred_dir, ref_dir, tmp_path / "eval", EvaluateConfig(surface=False))
    assert s["labels"] == {"1": "kidney", "2": "tumor"}
    assert s["cases_without_prediction"] == ["c2"]
    assert s["mean"]["2"]["Dice"] == pytest.approx(case_metrics(pred, ref, [2], SPACING)["2"]["Dice"])


def test_geometry_mismatch_names_the_prediction(raw_and_pred, tmp_path):
    raw, pred_dir, arrays = raw_and_pred
    pred, _ = arrays["case_b"]
    shifted = AFFINE.copy()
    shifted[0, 3] = 5.0
    save_volume(pred_dir / "case_b.nii.gz", pred, shifted)
    with pytest.raises(LocsegError, match="affine differs") as err:
        evaluate(pred_dir, raw, tmp_path / "eval", EvaluateConfig(surface=False))
    assert err.value.path.endswith("case_b.nii.gz")
    save_volume(pred_dir / "case_b.nii.gz", pred[:, :, :-1], AFFINE)
    with pytest.raises(LocsegError, match=r"shape \(16, 14, 9\) differs"):
        evaluate(pred_dir, raw, tmp_path / "eval2", EvaluateConfig(surface=False))


def test_missing_reference_is_one_line_error(raw_and_pred, tmp_path):
    raw, pred_dir, arrays = raw_and_pred
    save_volume(pred_dir / "case_zz.nii.gz", arrays["case_a"][0], AFFINE)
    with pytest.raises(LocsegError, match="no reference label for case.*case_zz"):
        evaluate(pred_dir, raw, tmp_path / "eval", EvaluateConfig(surface=False))


def test_cli_prints_table_and_writes_summary(raw_and_pred, tmp_path, capsys):
    raw, pred_dir, _ = raw_and_pred
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as ex:
        main(["evaluate", "--pred", str(pred_dir), "--ref", str(raw), "--out", str(out), "--no-surface",
              "--region", "organs=1,2"])
    assert ex.value.code == 0
    text = capsys.readouterr().out
    assert "liver" in text and "organs" in text and "foreground" in text
    s = json.loads((out / "summary.json").read_text())
    assert "NSD" not in s["mean"]["1"] and not math.isnan(s["mean"]["organs"]["Dice"])
    with pytest.raises(SystemExit) as ex:
        main(["evaluate", "--pred", str(pred_dir), "--ref", str(raw), "--out", str(tmp_path / "e2"),
              "--hd-percentile", "0"])
    assert ex.value.code == 2


def test_worker_processes_give_the_same_summary(raw_and_pred, tmp_path):
    raw, pred_dir, _ = raw_and_pred
    # without surface metrics the workers need no torch: a cheap start
    serial = evaluate(pred_dir, raw, tmp_path / "e1", EvaluateConfig(workers=1, surface=False))
    parallel = evaluate(pred_dir, raw, tmp_path / "e2", EvaluateConfig(workers=2, surface=False))
    assert parallel["metric_per_case"] == serial["metric_per_case"]


def test_kits23_reference_brings_its_regions(tmp_path):
    from locseg_cli.datasets.layouts import LABELS_OVERRIDE_FILE
    from locseg_cli.io.nifti import load_volume

    raw = tmp_path / "kits"
    w = DatasetWriter(raw, {0: "background", 1: "kidney", 2: "tumor", 3: "cyst"}, layout="kits23", name="KiTS23")
    ref = np.zeros((12, 10, 8), np.uint8)
    ref[2:10, 2:8, 1:7] = 1
    ref[4:7, 3:6, 2:5] = 2
    ref[8:10, 5:8, 4:7] = 3
    w.write_case("case_00001", np.zeros(ref.shape, np.float32), ref, AFFINE)
    w.finish()
    (raw / LABELS_OVERRIDE_FILE).unlink()  # the real KiTS23 has no label table: the reader's own applies
    stored = load_volume(raw / "dataset" / "case_00001" / "segmentation.nii.gz", dtype=None)
    pred = np.asarray(stored.array).copy()
    pred[pred == 3] = 2  # the cyst predicted as tumour: masses stay right, tumour gets false positives
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    save_volume(pred_dir / "case_00001.nii.gz", pred, stored.affine)
    s = evaluate(pred_dir, raw, tmp_path / "eval", EvaluateConfig(surface=False))
    assert s["foreground_keys"] == ["kidney_and_masses", "masses", "tumor"]
    m = s["metric_per_case"][0]["metrics"]
    assert m["kidney_and_masses"]["Dice"] == 1.0 and m["masses"]["Dice"] == 1.0
    n_tumor, n_cyst = int((ref == 2).sum()), int((ref == 3).sum())
    assert m["tumor"]["Dice"] == pytest.approx(2 * n_tumor / (2 * n_tumor + n_cyst))
    assert m["tumor"] == m["2"] and m["3"]["Dice"] == 0.0
    assert s["foreground_mean"]["Dice"] == pytest.approx((2 + m["tumor"]["Dice"]) / 3)
