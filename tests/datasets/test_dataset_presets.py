"""The dataset presets load against the stage configs and agree with the readers' tables."""

from __future__ import annotations

import pytest

from locseg_cli.config import resolve_config
from locseg_cli.datasets.tables import KITS23_EXCLUDED, KITS23_REGIONS

preprocess_config = pytest.importorskip("locseg_cli.preprocessing.config")
evaluation_config = pytest.importorskip("locseg_cli.evaluation.config")


@pytest.mark.parametrize("name, layout, location, window", [
    ("btcv", "btcv", "volume", (-175.0, 250.0)),
    ("amos22", "amos22", "bpr", (-175.0, 250.0)),
    ("kits23", "kits23", "bpr", (-58.0, 302.0)),
])
def test_dataset_presets_resolve(name, layout, location, window):
    cfg = resolve_config(preprocess_config.PreprocessConfig, name)
    assert (cfg.dataset, cfg.location, cfg.window) == (layout, location, window)


def test_kits23_preset_lists_the_reader_exclusions_and_regions():
    cfg = resolve_config(preprocess_config.PreprocessConfig, "kits23")
    assert sorted(cfg.exclude) == sorted(KITS23_EXCLUDED)
    ev = resolve_config(evaluation_config.EvaluateConfig, "kits23")
    assert {k: tuple(v) for k, v in ev.regions.items()} == KITS23_REGIONS
