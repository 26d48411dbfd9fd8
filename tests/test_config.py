"""Presets: YAML, includes, stage sections, unknown keys and wrong types rejected, CLI overrides win."""

from __future__ import annotations

import pytest

from locseg_cli.config import load_preset, resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.preprocessing import PreprocessConfig
from locseg_cli.training import TrainConfig


def _write(path, text):
    path.write_text(text)
    return path


def test_preset_sections_shared_keys_and_overrides(tmp_path):
    p = _write(tmp_path / "p.yaml", "seed: 7\npreprocess:\n  spacing: [4, 4, 4]\ntrain:\n  model: locbam\n  lr: 0.003\n")
    pre = resolve_config(PreprocessConfig, str(p))
    assert pre.spacing == (4.0, 4.0, 4.0) and pre.seed == 7
    tr = resolve_config(TrainConfig, str(p), {"lr": "0.5", "epochs": None})
    assert tr.model == "locbam" and tr.lr == 0.5 and tr.seed == 7 and tr.epochs == 1000


def test_include_merges_later_wins(tmp_path):
    _write(tmp_path / "base.yaml", "train:\n  lr: 0.1\n  epochs: 3\n")
    p = _write(tmp_path / "top.yaml", f"include: [{tmp_path / 'base.yaml'}]\ntrain:\n  lr: 0.2\n")
    tr = resolve_config(TrainConfig, str(p))
    assert tr.lr == 0.2 and tr.epochs == 3


def test_unknown_keys_are_rejected(tmp_path):
    p = _write(tmp_path / "p.yaml", "train:\n  learning_rate: 0.1\n")
    with pytest.raises(LocsegError, match="unknown option 'learning_rate' in section 'train'"):
        resolve_config(TrainConfig, str(p))
    q = _write(tmp_path / "q.yaml", "spacingg: [1, 1, 1]\n")
    with pytest.raises(LocsegError, match="unknown option 'spacingg'"):
        load_preset(str(q))


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: many\n", "expected an integer"),
    ("train:\n  lr: [1, 2]\n", "expected a number"),
    ("preprocess:\n  spacing: [1, 2]\n", "expected 3 values"),
    ("preprocess:\n  location: gps\n", "must be one of volume, bpr, truth"),
    ("train:\n  nesterov: maybe\n", "expected true/false"),
    ("train: [1, 2]\n", "section 'train' must be a mapping"),
    ("- a\n- b\n", "must be a mapping"),
    ("train:\n  lr: [\n", "not valid YAML"),
])
def test_wrong_types_give_one_line(tmp_path, text, message):
    p = _write(tmp_path / "p.yaml", text)
    with pytest.raises(LocsegError, match=message) as exc:
        resolve_config(TrainConfig if "train" in text or "-" in text else PreprocessConfig, str(p))
    assert "\n" not in str(exc.value)


def test_missing_preset_and_validation(tmp_path):
    with pytest.raises(LocsegError, match="no such preset"):
        resolve_config(TrainConfig, "does-not-exist")
    with pytest.raises(LocsegError, match="--patch-size must be multiples of 16"):
        resolve_config(TrainConfig, None, {"patch_size": "20,20,20"})
    with pytest.raises(LocsegError, match="--spacing must be positive"):
        resolve_config(PreprocessConfig, None, {"spacing": "0,1,1"})
