"""`locseg export` on a trained run: the card states the run, bad input is one line and writes nothing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from locseg_cli import __version__
from locseg_cli.errors import LocsegError
from locseg_cli.export import CARD_FILE, export_run
from locseg_cli.export.card import intensity_fields
from locseg_cli.io.atomic import TMP_PREFIX
from locseg_cli.io.manifest import read_manifest
from locseg_cli.preprocessing.plan import PreprocessPlan


def _locseg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "locseg_cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _no_temporaries(folder: Path) -> bool:
    return not any(p.name.startswith(TMP_PREFIX) for p in folder.iterdir())


def test_onnx_export_card_states_the_run(trained_run, tmp_path):
    result = export_run(trained_run, tmp_path / "onnx", "onnx")
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [CARD_FILE, "model.onnx"]
    assert _no_temporaries(tmp_path)
    card = result.card
    plan = PreprocessPlan.of(read_manifest(trained_run, "train"))
    assert card["labels"] == {"0": "background", "1": "upper", "2": "lower"}
    assert card["preprocessing"]["spacing_mm"] == [2.0, 2.0, 2.0] == list(plan.spacing)
    assert card["preprocessing"]["orientation"]["axcodes"] == ["S", "A", "R"]
    assert card["preprocessing"]["intensity"] == {
        "mode": "window", "window_hu": [-175.0, 250.0],
        "formula": "(clip(hu, window_hu[0], window_hu[1]) - window_hu[0]) / (window_hu[1] - window_hu[0])"}
    assert card["location"]["mode"] == "volume"
    assert card["shapes"]["patch_size"] == [16, 16, 32]
    assert card["inputs"][1]["shape"] == ["batch", 3, 16, 16, 32]
    assert card["model"]["name"] == "locbam" and card["model"]["features"] == [4, 4, 8, 8, 16, 4]
    assert card["versions"]["locseg"] == __version__
    ckpt = trained_run / "checkpoints" / "last.pt"
    assert card["checkpoint"]["name"] == "last" and card["checkpoint"]["iteration"] == 2
    assert card["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert card["check"]["max_abs_logit_diff"] <= 1e-4


def test_zscore_card_gives_the_clip_and_the_statistics():
    plan = PreprocessPlan.from_values({"normalization": "zscore"}, {
        "spacing": [1, 1, 1], "labels": {"0": "background"},
        "intensity": {"mean": 40.0, "std": 20.0, "percentile_00_5": -100.0, "percentile_99_5": 300.0}})
    fields = intensity_fields(plan)
    assert fields["clip_hu"] == [-100.0, 300.0] and fields["mean"] == 40.0 and fields["std"] == 20.0
    hu = np.array([-500.0, 40.0, 1000.0])
    lo, hi = fields["clip_hu"]
    from locseg_cli.preprocessing.pipeline import normalise  # the card's formula is what preprocess does

    np.testing.assert_allclose((np.clip(hu, lo, hi) - fields["mean"]) / fields["std"],
                               normalise(hu, plan.config, plan.intensity), rtol=1e-6)


def test_force_replaces_a_non_empty_out(trained_run, tmp_path):
    out = tmp_path / "ts"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(LocsegError, match="not empty; pass --force"):
        export_run(trained_run, out, "torchscript")
    assert (out / "stale.txt").read_text() == "old"
    export_run(trained_run, out, "torchscript", checkpoint="best", force=True)
    assert sorted(p.name for p in out.iterdir()) == [CARD_FILE, "model.pt"]
    assert _no_temporaries(tmp_path)


def test_a_failure_while_writing_leaves_nothing(trained_run, tmp_path, monkeypatch):
    from locseg_cli.export import formats

    def broken(model, example, path):
        path.write_bytes(b"half a model")
        raise RuntimeError("disk trouble")

    monkeypatch.setitem(formats.FORMATS, "torchscript", formats.FORMATS["torchscript"].__class__(
        "model.pt", broken, formats.run_torchscript, lambda: "torch"))
    with pytest.raises(RuntimeError, match="disk trouble"):
        export_run(trained_run, tmp_path / "ts", "torchscript")
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_packages_name_the_extra(trained_run, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(LocsegError, match=r"onnxscript: install the export extra: pip install 'locseg\[export\]'"):
        export_run(trained_run, tmp_path / "onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case, needle", [
    ("format", "--format: unknown format 'tflite' (known: onnx, torchscript)"),
    ("no-checkpoint", "checkpoints/last.pt: checkpoint not found"),
    ("out-not-empty", "exists and is not empty; pass --force to replace it"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(trained_run, tmp_path, case, needle):
    run, out, fmt = trained_run, tmp_path / "out", "torchscript"
    if case == "format":
        fmt = "tflite"
    elif case == "no-checkpoint":
        run = tmp_path / "run"
        run.mkdir()
        for name in ("manifest.json", "config.json"):
            shutil.copy(trained_run / name, run / name)
    else:
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = _locseg("export", "--run", str(run), "--format", fmt, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_the_check_refuses_logits_that_differ():
    import torch

    from locseg_cli.export.run import example_inputs, verify

    model = torch.nn.Module()
    model.forward = lambda image, location: image * 100.0  # logits up to a few hundred
    image, location = example_inputs(1, (4, 4, 4))
    expected = image * 100.0
    assert verify(model, expected + 1e-3, image, location, "x")["tolerance"] > 1e-3  # relative to the scale
    with pytest.raises(RuntimeError, match="differ from PyTorch's"):
        verify(model, expected + 1.0, image, location, "x")
