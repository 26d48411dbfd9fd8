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


@pytest.mark.parametrize("name, field, value", [
    ("lowres", "spacing", (2.0, 1.5, 1.5)),
    ("isotropic", "spacing", (1.0, 1.0, 1.0)),
    ("median", "spacing", (3.0, 0.75, 0.75)),
    ("dataset-median", "spacing_mode", "dataset-median"),
])
def test_named_spacing_means_its_preset(name, field, value):
    assert getattr(resolve_config(PreprocessConfig, overrides={"spacing": name}), field) == value


def test_named_fixed_spacing_wins_over_a_dataset_median_preset(tmp_path):
    p = _write(tmp_path / "p.yaml", "preprocess:\n  spacing_mode: dataset-median\n")
    cfg = resolve_config(PreprocessConfig, str(p), {"spacing": "lowres"})
    assert (cfg.spacing_mode, cfg.spacing) == ("fixed", (2.0, 1.5, 1.5))


def test_named_patch_size_sets_its_batch_unless_given():
    large = resolve_config(TrainConfig, overrides={"patch_size": "large"})
    assert (large.patch_size, large.batch_size) == ((128, 128, 128), 2)
    mine = resolve_config(TrainConfig, overrides={"patch_size": "median-large", "batch_size": "4"})
    assert (mine.patch_size, mine.batch_size) == ((48, 192, 192), 4)
    assert resolve_config(TrainConfig, overrides={"patch_size": "32,32,64"}).patch_size == (32, 32, 64)


def test_names_work_in_presets_too(tmp_path):
    p = _write(tmp_path / "p.yaml", "preprocess:\n  spacing: isotropic\ntrain:\n  patch_size: small\n  batch_size: 8\n")
    assert resolve_config(PreprocessConfig, str(p)).spacing == (1.0, 1.0, 1.0)
    tr = resolve_config(TrainConfig, str(p))
    assert (tr.patch_size, tr.batch_size, tr.volumes_per_batch) == ((32, 32, 32), 8, 2)


@pytest.mark.parametrize("cls, field, value, message", [
    (PreprocessConfig, "spacing", "lowre", "--spacing: unknown name 'lowre'; give one of .*lowres.*or three numbers"),
    (PreprocessConfig, "spacing", "1", r"--spacing: expected 3 values, got 1 \(or a name: .*isotropic"),
    (TrainConfig, "patch_size", "huge", "--patch-size: unknown name 'huge'; give one of .*median-large"),
])
def test_bad_names_list_the_accepted_ones(cls, field, value, message):
    with pytest.raises(LocsegError, match=message):
        resolve_config(cls, overrides={field: value})
