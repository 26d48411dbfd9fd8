"""A tiny valid world (raw dataset, its preprocess output, a 2-iteration run), built once per session.

Test modules import the fixtures (`from world import world_fixture, world_template_fixture`); not a conftest.py, so the
other test folders keep importing tests/synthdata.py unambiguously.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY_TRAIN = {"model": "baseline", "features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 2,
              "epochs": 1, "iterations_per_epoch": 2, "val_every": 0, "workers": 0, "threads": 1, "fold": -1}


_BUILT: list[Path] = []  # one world per session, whichever module asks first


@pytest.fixture(scope="session", name="world_template")
def world_template_fixture(tmp_path_factory) -> Path:
    from synthdata import write_dataset

    from locseg_cli.config import resolve_config
    from locseg_cli.preprocessing import PreprocessConfig, preprocess
    from locseg_cli.training import TrainConfig, train

    if _BUILT:
        return _BUILT[0]
    root = tmp_path_factory.mktemp("world")
    write_dataset(root / "raw", n=3)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    train(root / "pre", root / "run", resolve_config(TrainConfig, None, TINY_TRAIN))
    _BUILT.append(root)
    return root


@pytest.fixture(name="world")
def world_fixture(world_template, tmp_path) -> Path:
    """A private copy of the world that a test may break."""
    w = tmp_path / "w"
    shutil.copytree(world_template, w)
    return w
