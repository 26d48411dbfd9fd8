"""A tiny raw dataset, its preprocess output and two runs on it (LocBAM and a baseline), built once."""

from __future__ import annotations

import pytest

from locseg_cli.config import resolve_config
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.training import TrainConfig, train

TINY_TRAIN = {"features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 4, "epochs": 1,
              "iterations_per_epoch": 4, "val_every": 0, "workers": 0, "locbam_reduction": 4, "threads": 1}


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """root with raw/, pre/, run/ (LocBAM) and run2/ (baseline, same preprocessing, another seed)."""
    from synthdata import write_dataset

    root = tmp_path_factory.mktemp("infer")
    write_dataset(root / "raw", n=4)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    train(root / "pre", root / "run", resolve_config(TrainConfig, None, {**TINY_TRAIN, "model": "locbam"}))
    train(root / "pre", root / "run2", resolve_config(TrainConfig, None, {**TINY_TRAIN, "model": "baseline",
                                                                           "seed": 1}))
    return root
