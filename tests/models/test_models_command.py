"""`locseg models` lists the registry with parameter counts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from locseg_cli.app import main
from locseg_cli.models import ModelConfig, build_model, count_parameters, model_names
from locseg_cli.models.summary import model_summaries


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code)


def test_models_command_lists_every_model_with_its_parameter_count(capsys):
    assert _run(["models", "--features", "4,4,8,8,16,4", "--out-channels", "3"]) == 0
    out = capsys.readouterr().out
    cfg = ModelConfig(features=(4, 4, 8, 8, 16, 4), out_channels=3)
    for name in model_names():
        assert name in out
        assert f"{count_parameters(build_model(dataclasses.replace(cfg, model=name))):,}" in out


def test_models_command_rejects_bad_widths(capsys):
    assert _run(["models", "--features", "4,4,8"]) == 2
    assert "--features: expected 6 values" in capsys.readouterr().err


def test_summaries_count_like_real_models():
    cfg = ModelConfig(features=(4, 4, 8, 8, 16, 4))
    rows = {r.name: r for r in model_summaries(cfg)}
    torch.manual_seed(0)
    real = count_parameters(build_model(dataclasses.replace(cfg, model="locbam")))
    assert rows["locbam"].parameters == real
    assert rows["baseline"].overhead == 0.0 and rows["locbam"].overhead > 0
