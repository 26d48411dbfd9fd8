"""A rerun of a finished stage answers "up to date" without importing torch (a second `make demo` is fast)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from synthdata import write_dataset

from locseg_cli.config import resolve_config
from locseg_cli.inference import InferConfig, infer
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.shift import ShiftEvalConfig, shift_eval
from locseg_cli.training import TrainConfig, train

TINY = {"features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 2, "epochs": 1,
        "iterations_per_epoch": 2, "val_every": 0, "workers": 0, "threads": 1, "model": "coordconv"}

_PROBE = """
import sys
from locseg_cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print("TORCH_IMPORTED" if "torch" in sys.modules else "NO_TORCH")
"""


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("uptodate")
    write_dataset(root / "raw", n=4)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    train(root / "pre", root / "run", resolve_config(TrainConfig, None, TINY))
    infer(root / "run", root / "pred", resolve_config(InferConfig, None, {"threads": 1}), data=root / "raw")
    shift_eval(root / "run", None, root / "shift", resolve_config(ShiftEvalConfig, None, {"shifts": "0,50"}),
               data=root / "raw")
    return root


@pytest.mark.parametrize("stage", ["train", "infer", "shift-eval"])
def test_an_up_to_date_stage_does_not_import_torch(done, stage):
    args = {"train": ["train", "--pre", done / "pre", "--out", done / "run", *_flags(TINY)],
            "infer": ["infer", "--run", done / "run", "--data", done / "raw", "--out", done / "pred", "--threads", "1"],
            "shift-eval": ["shift-eval", "--run", done / "run", "--data", done / "raw", "--out", done / "shift",
                           "--shifts", "0,50"]}[stage]
    res = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stdout and res.stdout.strip().endswith("NO_TORCH"), res.stdout


def _flags(options: dict) -> list[str]:
    return [a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", str(v))]
