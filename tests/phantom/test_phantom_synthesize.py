"""`synthesize` / `locseg synth`: files, manifest, determinism across workers, layouts, reruns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from locseg_cli.datasets import open_dataset
from locseg_cli.datasets.writers import LAYOUT_WRITERS
from locseg_cli.io.manifest import case_path, read_manifest
from locseg_cli.io.nifti import load_volume
from locseg_cli.phantom import LABELS, SynthConfig, synthesize
from locseg_cli.progress import Progress

TINY = "8,7,7"


class Recorder(Progress):
    def __init__(self):
        self.lines = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.nii.gz")) + sorted((root / "bodypos").glob("*.json"))}


def test_synthesize_writes_nnunet_dataset_bodypos_montage_and_manifest(tmp_path):
    out = tmp_path / "raw"
    cfg = SynthConfig(cases=2, spacing=TINY, workers=1, montage_cases=2)
    m = synthesize(cfg, out)
    assert (out / "dataset.json").is_file() and (out / "montage.png").stat().st_size > 10_000
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["labels"] == {name: v for v, name in LABELS.items()} and dj["numTraining"] == 2
    m2 = read_manifest(out, "synth")
    assert m2.config["cases"] == 2 and m2.extra["labels"] == {str(k): v for k, v in LABELS.items()}
    assert list(m.cases) == ["synth_000", "synth_001"]
    ds = open_dataset(out)
    assert ds.layout == "nnunet" and [c.case_id for c in ds.cases] == ["synth_000", "synth_001"]
    for entry in m2.cases.values():
        img = load_volume(case_path(out, entry["files"]["image"]), dtype=None)
        lab = load_volume(case_path(out, entry["files"]["label"]), dtype=None)
        assert img.array.dtype == np.int16 and lab.array.dtype == np.uint8
        assert list(img.array.shape) == entry["meta"]["shape"]
        bp = json.loads(case_path(out, entry["files"]["bodypos"]).read_text())
        k = bp["axial_axis"]
        assert len(bp["scores"]) == img.array.shape[k]
        assert np.allclose(img.affine[2, k] * np.arange(img.array.shape[k]) + img.affine[2, 3], bp["z_world_mm"],
                           atol=1e-3)
        assert entry["meta"]["score_range"] == [round(min(bp["scores"]), 3), round(max(bp["scores"]), 3)]


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synthesize(SynthConfig(cases=3, spacing=TINY, workers=1, montage_cases=0), a)
    synthesize(SynthConfig(cases=3, spacing=TINY, workers=2, montage_cases=0), b)
    da, db = digest(a), digest(b)
    assert len(da) == 9 and da == db
    c = tmp_path / "c"
    synthesize(SynthConfig(cases=3, seed=7, spacing=TINY, workers=1, montage_cases=0), c)
    assert digest(c) != da


def test_rerun_is_up_to_date_and_more_cases_only_adds(tmp_path):
    out = tmp_path / "raw"
    cfg = SynthConfig(cases=2, spacing=TINY, workers=1, montage_cases=1)
    synthesize(cfg, out)
    first = out / "imagesTr" / "synth_000_0000.nii.gz"
    mtime = first.stat().st_mtime_ns
    rec = Recorder()
    synthesize(cfg, out, rec)
    assert any("up to date" in line for line in rec.lines)
    synthesize(SynthConfig(cases=3, spacing=TINY, workers=1, montage_cases=1), out)
    assert first.stat().st_mtime_ns == mtime  # existing case kept
    assert len(read_manifest(out, "synth").cases) == 3
    synthesize(SynthConfig(cases=1, spacing=TINY, workers=1, montage_cases=1), out)
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == ["synth_000_0000.nii.gz"]
    assert open_dataset(out).cases[0].case_id == "synth_000"


@pytest.mark.parametrize("layout", sorted(LAYOUT_WRITERS))
def test_every_layout_is_readable_by_the_dataset_readers(tmp_path, layout):
    out = tmp_path / layout
    synthesize(SynthConfig(cases=1, spacing=TINY, workers=1, layout=layout, montage_cases=0, seed=5), out)
    ds = open_dataset(out)
    assert ds.layout == layout
    assert [c.case_id for c in ds.cases] == ["synth_000"]
    assert {int(k): v for k, v in ds.labels.items()} == LABELS
    m = read_manifest(out, "synth")
    for c in ds.cases:
        img = load_volume(c.image, dtype=None)
        bp = json.loads(case_path(out, m.cases[c.case_id]["files"]["bodypos"]).read_text())
        k = bp["axial_axis"]
        assert int(np.argmax(np.abs(img.affine[2, :3]))) == k
        assert len(bp["scores"]) == img.array.shape[k]
        assert load_volume(c.label, dtype=None).array.max() <= max(LABELS)


def test_cli_synth_and_its_one_line_errors(tmp_path, capsys):
    from locseg_cli.app import main

    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", str(out), "--cases", "1", "--spacing", TINY, "--montage-cases", "0", "--workers", "1"])
    assert exc.value.code == 0
    assert (out / "manifest.json").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", str(tmp_path / "bad"), "--spacing", "wide"])
    assert exc.value.code == 2
    assert "--spacing" in capsys.readouterr().err


def test_changing_layout_needs_force_and_leaves_one_readable_layout(tmp_path):
    from locseg_cli.errors import LocsegError

    out = tmp_path / "raw"
    synthesize(SynthConfig(cases=1, spacing=TINY, workers=1, montage_cases=0), out)
    kits = SynthConfig(cases=1, spacing=TINY, workers=1, montage_cases=0, layout="kits23")
    with pytest.raises(LocsegError):
        synthesize(kits, out)
    synthesize(kits, out, force=True)
    assert not (out / "dataset.json").exists() and not (out / "imagesTr").exists()
    ds = open_dataset(out)
    assert ds.layout == "kits23" and [c.case_id for c in ds.cases] == ["synth_000"]


def test_worker_pool_shrinks_to_fit_free_memory(monkeypatch):
    import importlib

    synth_mod = importlib.import_module("locseg_cli.phantom.synthesize")  # the module, not the function

    cfg = SynthConfig(spacing="clinical", workers=4)
    monkeypatch.setattr(synth_mod.os, "sysconf", lambda name: 2**20 if name == "SC_AVPHYS_PAGES" else 4096)
    assert synth_mod.worker_count(cfg, 10) == 1  # 4 GiB free, a clinical case needs more
    monkeypatch.setattr(synth_mod.os, "sysconf", lambda name: 2**26 if name == "SC_AVPHYS_PAGES" else 4096)
    assert synth_mod.worker_count(SynthConfig(spacing="demo", workers=4), 10) == 4  # 256 GiB free
    assert synth_mod.worker_count(SynthConfig(spacing="demo", workers=4), 2) == 2  # never more than cases
