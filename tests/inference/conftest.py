"""A tiny raw dataset, its preprocess output and two runs on it (LocBAM and a baseline), built once."""

from __future__ import annotations

import pytest

from locseg_cli.config import resolve_config
from locseg_cli.training import TrainConfig, train


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """root with raw/, pre/, run/ (LocBAM) and run2/ (baseline, same preprocessing, another seed)."""
    from synthdata import TINY_TRAIN, write_tiny_run

    root = tmp_path_factory.mktemp("infer")
    write_tiny_run(root)
    train(root / "pre", root / "run2", resolve_config(TrainConfig, None, {**TINY_TRAIN, "model": "baseline",
                                                                           "seed": 1}))
    return root
