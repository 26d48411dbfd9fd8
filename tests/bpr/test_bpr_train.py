"""Training, checkpoint/resume, scoring and the CLI on tiny phantoms (seconds, not accuracy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from locseg_cli.app import main
from locseg_cli.bpr import load_scores
from locseg_cli.bpr.config import BprScoreConfig, BprTrainConfig
from locseg_cli.bpr.inference import load_regressor, score_dataset
from locseg_cli.bpr.train import CHECKPOINT_FILE, MODEL_FILE, load_checkpoint, train_regressor
from locseg_cli.errors import LocsegError
from locseg_cli.progress import Progress

TINY = dict(width=4, size=32, pixel_mm=14.0, batch_volumes=3, checkpoint_every=5, steps=10)
TRAIN_CASES = [("t1", -5.0, 40, 22.0, "last"), ("t2", 30.0, 30, 25.0, "last"), ("t3", 10.0, 35, 20.0, "first")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, phantom_cohort):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bpr")
    raw = phantom_cohort(root / "raw", TRAIN_CASES)
    res = train_regressor(raw, root / "model", BprTrainConfig(**TINY))
    return root, raw, res


def test_training_writes_a_model_with_its_calibration(trained):
    root, _, res = trained
    assert not res.up_to_date and res.steps == 10
    assert (root / "model" / MODEL_FILE).is_file() and (root / "model" / CHECKPOINT_FILE).is_file()
    state = load_checkpoint(root / "model" / MODEL_FILE)  # weights_only load works
    assert state["arch"] == "compact" and state["lookup_table"]["pelvis_start"]["source"] == "training"
    assert state["cleaning"]["transform_min"] != state["cleaning"]["transform_max"]
    assert np.isfinite(res.final_loss)
    manifest = json.loads((root / "model" / "manifest.json").read_text())
    assert manifest["complete"] and sorted(manifest["cases"]) == ["t1", "t2", "t3"]


def test_same_config_is_up_to_date_and_a_checkpoint_needs_resume_or_force(trained):
    root, raw, _ = trained
    assert train_regressor(raw, root / "model", BprTrainConfig(**TINY)).up_to_date
    with pytest.raises(LocsegError, match="--resume"):
        train_regressor(raw, root / "model", BprTrainConfig(**{**TINY, "steps": 12}))


class _StopAt(Progress):
    """Interrupt training after `n` steps, as Ctrl-C would."""

    def __init__(self, n: int):
        self.n, self.done, self.training = n, 0, False

    def start(self, description, total=None):
        self.training = "training" in description

    def advance(self, n=1, **fields):
        if self.training:
            self.done += n
            if self.done > self.n:
                raise KeyboardInterrupt


def test_resume_continues_exactly_where_it_stopped(trained, tmp_path):
    _, raw, _ = trained
    cfg = BprTrainConfig(**TINY)
    train_regressor(raw, tmp_path / "straight", cfg)
    with pytest.raises(KeyboardInterrupt):
        train_regressor(raw, tmp_path / "resumed", cfg, progress=_StopAt(7))  # checkpoint at step 5
    assert load_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)["step"] == 5
    train_regressor(raw, tmp_path / "resumed", cfg, resume=True)
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_FILE)
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)
    assert a["history"] == b["history"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_scoring_is_the_same_whatever_the_storage_order(trained, phantom_cohort):
    root, _, _ = trained
    cases = [("s_last", 20.0, 25, 20.0, "last"), ("s_rev", 20.0, 25, 20.0, "reversed"),
             ("s_first", 20.0, 25, 20.0, "first")]
    test_raw = phantom_cohort(root / "test_raw", cases)
    res = score_dataset(root / "model", test_raw, root / "scores", BprScoreConfig())
    assert res["scored"] == 3
    recs = {cid: load_scores(root / "scores", cid) for cid, *_ in cases}
    ref = recs["s_last"]
    for cid in ("s_rev", "s_first"):
        np.testing.assert_allclose(recs[cid]["unprocessed slice scores"], ref["unprocessed slice scores"], atol=1e-3)
        np.testing.assert_allclose(recs[cid]["z_world_mm"], ref["z_world_mm"])
    assert recs["s_rev"]["slice_index"] == list(range(24, -1, -1))
    assert recs["s_first"]["axial_axis"] == 0
    assert score_dataset(root / "model", test_raw, root / "scores", BprScoreConfig())["up_to_date"]


def test_load_regressor_refuses_other_folders(trained, tmp_path):
    root, raw, _ = trained
    with pytest.raises(LocsegError):
        load_regressor(raw)
    (tmp_path / "model.pt").write_bytes(b"not a model")
    with pytest.raises(LocsegError, match="checkpoint|regressor"):
        load_regressor(tmp_path / "model.pt")


def test_training_without_landmarks_says_how_to_give_them(tmp_path, phantom_cohort):
    raw = phantom_cohort(tmp_path / "raw", [("u1", 20.0, 12, 20.0, "last")])
    for p in (raw / "bodypos").iterdir():
        p.unlink()
    with pytest.raises(LocsegError, match="--landmarks"):
        train_regressor(raw, tmp_path / "m", BprTrainConfig(**{**TINY, "steps": 1}))
    marks = tmp_path / "marks.yaml"
    marks.write_text("u1: {pelvis_start: 0, L1: 11}\n")
    res = train_regressor(raw, tmp_path / "m", BprTrainConfig(**TINY), landmarks_file=marks,
                          force=True)
    assert set(res.calibration["landmark_spread"]) == {"pelvis_start", "L1"}
    marks.write_text("u1: {nose_tip: 3}\n")
    with pytest.raises(LocsegError, match="unknown landmark"):
        train_regressor(raw, tmp_path / "m2", BprTrainConfig(**TINY), landmarks_file=marks)


def test_cli_train_score_eval(trained, tmp_path, capsys):
    _, raw, _ = trained
    args = ["--data", str(raw), "--width", "4", "--steps", "10", "--batch-volumes", "3", "--threads", "1"]
    preset = tmp_path / "tiny.yaml"
    preset.write_text("bpr-train: {size: 32, pixel_mm: 14.0}\n")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # so that --threads 1 has something to change
    for cmd in (["bpr", "train", *args, "--out", str(tmp_path / "m"), "--preset", str(preset)],
                ["bpr", "score", "--model", str(tmp_path / "m"), "--data", str(raw), "--out", str(tmp_path / "s")],
                ["bpr", "eval", "--scores", str(tmp_path / "s"), "--data", str(raw), "--out", str(tmp_path / "e")]):
        with pytest.raises(SystemExit) as e:
            main(cmd)
        assert e.value.code == 0, cmd
        if cmd[1] == "train":
            assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    summary = json.loads((tmp_path / "e" / "bpr_eval.json").read_text())
    assert summary["pooled"]["cases"] == 3 and np.isfinite(summary["pooled"]["location"]["mae"])
    assert "pooled" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["bpr", "score", "--model", str(raw), "--data", str(raw), "--out", str(tmp_path / "s2")])
    assert e.value.code == 2


def test_calibration_maps_landmark_means_like_bpreg():
    from locseg_cli.bpr.train import TrainVolume, calibrate

    empty = np.zeros((5, 2, 2), np.float16)
    vols = [TrainVolume("a", empty, 10.0, [("pelvis_start", 0, 0.0), ("eyes_end", 4, 100.0)]),
            TrainVolume("b", empty, 10.0, [("pelvis_start", 1, 0.0), ("eyes_end", 3, 100.0)])]
    raw = {"a": np.array([1.0, 2, 3, 4, 9]), "b": np.array([0.0, 3.0, 5, 7, 8])}
    cal = calibrate(raw, vols)
    # pelvis_start raws 1 and 3 (mean 2) -> 0; eyes_end raws 9 and 7 (mean 8) -> 100
    assert cal["transform_min"] == pytest.approx(2.0) and cal["transform_max"] == pytest.approx(8.0)
    assert cal["lookup_table"]["pelvis_start"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert cal["landmark_spread"]["eyes_end"] == pytest.approx(100 / 6)  # raws 7, 9: +-1 raw unit
    # per-case targets (the synthetic cohort's landmark scores vary with the patient)
    vols2 = [TrainVolume("a", empty, 10.0, [("kidney", 1, 30.0), ("L1", 3, 40.0)]),
             TrainVolume("b", empty, 10.0, [("kidney", 1, 34.0), ("L1", 2, 42.0)])]
    raw2 = {"a": np.array([0.0, 3.0, 0, 4.0, 0]), "b": np.array([0.0, 3.4, 4.2, 0, 0])}
    cal2 = calibrate(raw2, vols2)  # raw = score / 10 exactly
    assert cal2["transform_min"] == pytest.approx(0.0, abs=1e-9)
    assert cal2["transform_max"] == pytest.approx(10.0)
    assert max(cal2["landmark_spread"].values()) < 1e-9
