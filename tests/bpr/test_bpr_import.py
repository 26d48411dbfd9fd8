"""`bpr import`: bpreg's own JSON files round-trip, get world z from the image, feed axial_location."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from locseg_cli.app import main
from locseg_cli.bpr import load_scores, location_scores
from locseg_cli.bpr.config import BprImportConfig
from locseg_cli.bpr.importer import bpreg_slice_order, case_id_from_file, import_bpreg
from locseg_cli.errors import LocsegError

CASES = [("up", 5.0, 30, 10.0, "last"), ("down", 30.0, 25, 12.0, "reversed"), ("kits", 40.0, 20, 15.0, "first")]


def bpreg_json(scores_inferior_first: np.ndarray, dz: float) -> dict:
    """A file as bpreg's `VolumeStorage.save_json` writes it (NaN tails, bpreg's keys and extras)."""
    n = len(scores_inferior_first)
    cleaned = scores_inferior_first.astype(float).copy()
    cleaned[:2] = np.nan
    return {
        "cleaned slice scores": list(cleaned), "z": list(np.arange(n) * dz),
        "unprocessed slice scores": list(scores_inferior_first.astype(float)),
        "body part examined": {"legs": [], "pelvis": [2.0, 3.0]}, "body part examined tag": "ABDOMEN",
        "look-up table": {"pelvis_start": {"mean": 0.0, "std": 1.2}, "eyes_end": {"mean": 100.0, "std": 2.1}},
        "reverse z-ordering": 0.0, "valid z-spacing": 1.0, "expected slope": 0.118, "observed slope": 0.117,
        "slope ratio": 0.99, "expected z-spacing": dz, "z-spacing": dz,
        "settings": {"slice score processing": {"smoothing_sigma": 10}},
    }


@pytest.fixture
def raw_and_bpreg(tmp_path, phantom_cohort):
    raw = phantom_cohort(tmp_path / "raw", CASES)
    bdir = tmp_path / "bpreg"
    bdir.mkdir()
    truth = {}
    for cid, *_ in CASES:
        pos = json.loads((raw / "bodypos" / f"{cid}.json").read_text())
        order = np.argsort(pos["z_world_mm"])  # bpreg writes slices inferior first for these affines
        s = np.asarray(pos["scores"])[order]
        z = np.asarray(pos["z_world_mm"])[order]
        truth[cid] = (z, s)
        # bpreg names its output after the input file: amos_0001_0000.nii.gz -> amos_0001_0000.json
        (bdir / f"{cid}_0000.json").write_text(json.dumps(bpreg_json(s, pos["spacing_mm"][2])))
    return raw, bdir, truth


def test_case_ids_from_bpreg_file_names(tmp_path):
    assert case_id_from_file(tmp_path / "img0001.json") == "img0001"
    assert case_id_from_file(tmp_path / "amos_0001_0000.json") == "amos_0001"
    assert case_id_from_file(tmp_path / "case_00001.nii.json") == "case_00001"


def test_bpreg_reader_rule_on_three_storage_orders():
    ras = np.diag([0.8, 0.8, 2.5, 1.0])
    assert bpreg_slice_order(ras) == (2, False)
    flipped = np.diag([0.8, 0.8, -2.5, 1.0])
    assert bpreg_slice_order(flipped) == (2, True)
    kits = np.array([[0, 0, -0.8, 0], [0, -0.8, 0, 0], [-3.0, 0, 0, 0], [0, 0, 0, 1.0]])
    assert bpreg_slice_order(kits) == (0, True)


def test_import_round_trips_bpreg_scores_and_adds_world_z(raw_and_bpreg, tmp_path):
    raw, bdir, truth = raw_and_bpreg
    res = import_bpreg(bdir, tmp_path / "bpr", BprImportConfig(), data=raw)
    assert res["imported"] == 3
    for cid, (z, s) in truth.items():
        original = json.loads((bdir / f"{cid}_0000.json").read_text())
        rec = load_scores(tmp_path / "bpr", cid)
        for key, value in original.items():  # every bpreg key and value comes back unchanged
            if key.endswith("slice scores"):
                assert len(rec[key]) == len(value)
                assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(rec[key], value))
            else:
                assert rec[key] == value, key
        np.testing.assert_allclose(rec["z_world_mm"], z, atol=1e-4)  # slices matched to the right world z
        assert rec["source"] == "bpreg"
        # and the scores reproduce the truth at the raw slices, NaN tail extrapolated linearly
        np.testing.assert_allclose(location_scores(rec, z), s, atol=1e-3)
    again = import_bpreg(bdir, tmp_path / "bpr", BprImportConfig(), data=raw)
    assert again["up_to_date"]


def test_import_order_option_overrides_the_rule(raw_and_bpreg, tmp_path):
    raw, bdir, truth = raw_and_bpreg
    import_bpreg(bdir, tmp_path / "bpr", BprImportConfig(order="stored"), data=raw)
    z, _ = truth["down"]
    rec = load_scores(tmp_path / "bpr", "down")
    np.testing.assert_allclose(rec["z_world_mm"], z[::-1], atol=1e-4)  # file order of a reversed file


def test_import_without_data_keeps_scores_but_no_location(raw_and_bpreg, tmp_path):
    _, bdir, _ = raw_and_bpreg
    import_bpreg(bdir, tmp_path / "bpr", BprImportConfig())
    rec = load_scores(tmp_path / "bpr", "up")
    assert "z_world_mm" not in rec
    with pytest.raises(LocsegError, match="--data"):
        location_scores(rec, np.zeros(2))


def test_import_errors_are_one_line(raw_and_bpreg, tmp_path):
    raw, bdir, _ = raw_and_bpreg
    (bdir / "stranger_0000.json").write_text(json.dumps(bpreg_json(np.arange(5.0), 2.0)))
    with pytest.raises(LocsegError, match="no image in --data"):
        import_bpreg(bdir, tmp_path / "o1", BprImportConfig(), data=raw)
    (bdir / "stranger_0000.json").unlink()
    (bdir / "up_0000.json").write_text(json.dumps(bpreg_json(np.arange(7.0), 2.0)))
    with pytest.raises(LocsegError, match="bpreg scored 7 slices"):
        import_bpreg(bdir, tmp_path / "o2", BprImportConfig(), data=raw)
    (bdir / "up_0000.json").write_text('{"z": [1, 2]}')
    with pytest.raises(LocsegError, match="not a bpreg score file"):
        import_bpreg(bdir, tmp_path / "o3", BprImportConfig())


def test_cli_import(raw_and_bpreg, tmp_path, capsys):
    raw, bdir, _ = raw_and_bpreg
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as e:
        main(["bpr", "import", "--bpreg-dir", str(bdir), "--data", str(raw), "--out", str(out)])
    assert e.value.code == 0
    assert sorted(p.name for p in out.glob("*.json")) == ["down.json", "kits.json", "manifest.json", "up.json"]
    with pytest.raises(SystemExit) as e:
        main(["bpr", "import", "--bpreg-dir", str(bdir), "--out", str(out), "--order", "sideways"])
    assert e.value.code == 2
    assert "sideways" in capsys.readouterr().err
