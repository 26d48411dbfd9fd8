"""Fine-tuning (`--init-from`): weights only, label tables checked, output layer afresh, clear refusals."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.models import build_model
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.runtime.checkpoint import load_checkpoint
from locseg_cli.training import TrainConfig, train
from locseg_cli.training.init_from import find_init_source, load_init_weights, output_layer_keys

TINY = {"features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 2, "epochs": 1,
        "iterations_per_epoch": 2, "val_every": 0, "workers": 0, "threads": 1, "fold": -1, "device": "cpu",
        "log_every": 1}
ALL = {"0": "background", "1": "upper", "2": "lower"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A preprocessed dataset with both classes, one with `upper` only, and a source run on the first."""
    from synthdata import write_dataset

    root = tmp_path_factory.mktemp("init")
    write_dataset(root / "raw", n=3)
    for name, labels in (("pre", None), ("pre-upper", "upper")):
        overrides = {"spacing": "2,2,2", "folds": 2, "labels": labels}
        preprocess(root / "raw", root / name, resolve_config(PreprocessConfig, None, overrides))
    train(root / "pre", root / "source", _cfg())
    return root


def _cfg(**kw) -> TrainConfig:
    return resolve_config(TrainConfig, None, {**TINY, **kw})


def _source_weights(world) -> dict:
    return load_checkpoint(world / "source" / "checkpoints" / "last.pt")["model"]


def test_same_labels_load_every_weight(world):
    cfg = dataclasses.replace(_cfg(), out_channels=3)
    model = build_model(cfg)
    record = load_init_weights(model, cfg, find_init_source(world / "source"), ALL)
    source = _source_weights(world)
    assert record["output_layer"] == "loaded" and "message" not in record and record["iteration"] == 2
    assert all(torch.equal(v, source[k]) for k, v in model.state_dict().items())


def test_other_labels_start_the_output_layer_afresh(world):
    cfg = dataclasses.replace(_cfg(), out_channels=2)
    torch.manual_seed(0)
    model = build_model(cfg)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoint = world / "source" / "checkpoints" / "last.pt"  # a checkpoint file works as well as its run
    record = load_init_weights(model, cfg, find_init_source(checkpoint), {"0": "background", "1": "upper"})
    head = output_layer_keys(cfg, fresh)
    assert head and record["output_layer"] == "re-initialised"
    assert record["message"].startswith("init-from: label tables differ (2 classes (upper, lower) in the source, "
                                        "1 classes (upper) here): the output layer starts afresh")
    source = _source_weights(world)
    for k, v in model.state_dict().items():
        assert torch.equal(v, fresh[k] if k in head else source[k]), k


def test_a_run_records_its_source_and_starts_at_iteration_zero(world, tmp_path):
    out = tmp_path / "tuned"
    result = train(world / "pre-upper", out, _cfg(init_from=str(world / "source")))
    assert result.did_work
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["init_from"] == str(world / "source")
    assert manifest["extra"]["init_from"]["output_layer"] == "re-initialised"
    assert manifest["inputs"]["init_from"]["path"].endswith("last.pt")
    iterations = [json.loads(ln)["iteration"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert iterations[0] == 1  # the source's iteration and optimizer are not carried over
    assert load_checkpoint(out / "checkpoints" / "last.pt")["iteration"] == 2


@pytest.mark.parametrize("source, kw, message", [
    ("source", {"model": "locbam"}, "--init-from: baseline weights do not fit this locbam network"),
    ("source", {"features": "8,8,16,16,32,8"}, "weights do not fit this baseline network .*mis-shaped"),
    ("nowhere", {}, "--init-from: no such run folder or checkpoint"),
    ("pre", {}, "--init-from needs a `locseg train` output"),
])
def test_what_does_not_fit_is_one_line(world, tmp_path, source, kw, message):
    with pytest.raises(LocsegError, match=message):
        train(world / "pre", tmp_path / "x", _cfg(init_from=str(world / source), **kw))


def test_cli_says_it_in_one_line_exit_2(world, tmp_path):
    argv = [sys.executable, "-m", "locseg_cli", "train", "--pre", str(world / "pre"), "--out", str(tmp_path / "x"),
            "--init-from", str(world / "source"), "--model", "coordconv",
            *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "do not fit this coordconv network" in lines[0], proc.stderr
