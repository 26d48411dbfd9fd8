"""Training: repeatable, resumable to the bit after a real kill, DDP under torchrun, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.runtime.checkpoint import load_checkpoint
from locseg_cli.training import TrainConfig, train

TINY = {"features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 4, "epochs": 2,
        "iterations_per_epoch": 3, "val_every": 3, "checkpoint_every": 3, "workers": 0, "log_every": 1,
        "locbam_reduction": 4, "threads": 1}


@pytest.fixture(scope="module")
def pre(tmp_path_factory):
    from synthdata import write_dataset

    root = tmp_path_factory.mktemp("train")
    write_dataset(root / "raw", n=4)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    return root / "pre"


def _cfg(**kw):
    return resolve_config(TrainConfig, None, {**TINY, **kw})


def _weights(run: Path) -> dict:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def test_run_writes_metrics_checkpoints_and_is_repeatable(pre, tmp_path):
    r = train(pre, tmp_path / "a", _cfg(model="locbam"))
    assert r.did_work and r.iterations == 6
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in lines if "loss" in x] == [1, 2, 3, 4, 5, 6]
    vals = [x for x in lines if "val_dice" in x]
    assert [x["iteration"] for x in vals] == [3, 6] and set(vals[0]["val_dice"]) == {"upper", "lower"}
    assert lines[0]["lr"] == 0.01 and lines[-2]["lr"] < 0.01  # poly schedule steps per epoch
    assert (tmp_path / "a/checkpoints/best.pt").is_file() and (tmp_path / "a/config.json").is_file()
    train(pre, tmp_path / "b", _cfg(model="locbam"))
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not train(pre, tmp_path / "a", _cfg(model="locbam")).did_work  # up to date


_KILLER = """
import os, sys
from locseg_cli.config import resolve_config
from locseg_cli.progress import Progress
from locseg_cli.training import TrainConfig, train
cfg = resolve_config(TrainConfig, None, {args})
class KillAfter(Progress):
    n = 0
    def advance(self, n=1, **fields):
        self.n += n
        if self.n == {k}:
            os._exit(9)  # SIGKILL-like: no cleanup, no finally blocks
train(sys.argv[1], sys.argv[2], cfg, progress=KillAfter())
"""


def test_killed_and_resumed_run_is_bitwise_equal(pre, tmp_path):
    args = {**TINY, "model": "coordconv"}
    train(pre, tmp_path / "full", _cfg(model="coordconv"))
    code = _KILLER.replace("{args}", repr(args)).replace("{k}", "3")
    proc = subprocess.run([sys.executable, "-c", code, str(pre), str(tmp_path / "cut")], capture_output=True,
                          text=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 9, proc.stderr
    assert load_checkpoint(tmp_path / "cut/checkpoints/last.pt")["iteration"] == 3
    assert not json.loads((tmp_path / "cut/manifest.json").read_text())["complete"]
    r = train(pre, tmp_path / "cut", _cfg(model="coordconv"))  # resumes (stale lock recovered)
    assert r.did_work
    wf, wc = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(wf[k], wc[k]) for k in wf)
    full_lines = (tmp_path / "full/metrics.jsonl").read_text().splitlines()
    cut_lines = (tmp_path / "cut/metrics.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "patches_per_s"} for x in full_lines]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "patches_per_s"} for x in cut_lines]


def test_bad_inputs_give_one_line_errors(pre, tmp_path):
    with pytest.raises(LocsegError, match="fold 7 does not exist"):
        train(pre, tmp_path / "x", _cfg(fold=7))
    with pytest.raises(LocsegError, match="unknown model 'unet9000'"):
        train(pre, tmp_path / "x", _cfg(model="unet9000"))
    with pytest.raises(LocsegError, match="larger than every volume"):
        train(pre, tmp_path / "x", _cfg(patch_size="128,128,128"))
    from locseg_cli.io.manifest import StageWriter

    with StageWriter("infer", tmp_path / "preds", {}, {}) as w:
        w.finish()
    with pytest.raises(LocsegError, match="this is a `infer` output, expected `preprocess`"):
        train(tmp_path / "preds", tmp_path / "x", _cfg())
    manifest = json.loads((pre / "manifest.json").read_text())
    other = tmp_path / "old_pre"
    other.mkdir()
    manifest["schema"] = 0
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LocsegError, match="older locseg"):
        train(other, tmp_path / "y", _cfg())
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_torchrun_two_processes_on_cpu(pre, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(worker), str(pre), str(tmp_path / "ddp"), json.dumps(TINY)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "ddp"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert (run / "metrics.jsonl").is_file() and json.loads((run / "manifest.json").read_text())["complete"]
    assert json.loads((run / "manifest.json").read_text())["extra"]["world_size"] == 2
    w0 = torch.load(run / "rank0.pt", weights_only=True)
    w1 = torch.load(run / "rank1.pt", weights_only=True)
    # DDP keeps the parameters identical on every rank; BatchNorm running statistics (buffers) are
    # rank-local between forwards (DDP re-broadcasts rank 0's at each forward), so compare parameters.
    params = {n for n, _ in _init_model().named_parameters()}
    assert params and all(torch.equal(w0[k], w1[k]) for k in params)
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if "running_mean" in k)  # each rank saw its own patches
    initial = _init_model().state_dict()
    assert any(not torch.equal(w0[k], initial[k]) for k in params)  # it trained


def _init_model():
    from locseg_cli.models import build_model

    torch.manual_seed(0)
    return build_model(_cfg(model="locbam", out_channels=3))


def test_an_option_without_effect_in_the_chosen_sampling_is_refused():
    from locseg_cli.config import resolve_config
    from locseg_cli.errors import LocsegError
    from locseg_cli.training import TrainConfig

    with pytest.raises(LocsegError, match="--foreground-fraction applies to --sampling nnunet only"):
        resolve_config(TrainConfig, None, {"foreground_fraction": 0.67})
    assert resolve_config(TrainConfig, None, {"foreground_fraction": 0.67, "sampling": "nnunet"}).foreground_fraction == 0.67


@pytest.mark.parametrize("memory_format, channels_last", [("auto", True), ("contiguous", False)])
def test_the_step_runs_in_the_layout_the_config_resolves(pre, tmp_path, monkeypatch, memory_format, channels_last):
    # On CPU `auto` trains channels-last (the faster convolutions); model and inputs must both be in it.
    import locseg_cli.training.trainer as trainer
    from locseg_cli.models.layout import is_channels_last

    seen, step = [], trainer.train_step

    def recording(net, model, optimizer, loss_fn, image, location, *args, **kw):
        conv = model.unet.conv_0.conv_0.conv.weight
        seen.append((is_channels_last(location), conv.is_contiguous(memory_format=torch.channels_last_3d)
                     and not conv.is_contiguous()))
        return step(net, model, optimizer, loss_fn, image, location, *args, **kw)

    monkeypatch.setattr(trainer, "train_step", recording)
    train(pre, tmp_path / "run", _cfg(model="coordconv", epochs=1, memory_format=memory_format))
    assert seen and all(s == (channels_last, channels_last) for s in seen)


@pytest.mark.parametrize("native", [True, False])
def test_the_manifest_records_the_precision_the_step_ran_in(pre, tmp_path, monkeypatch, native):
    # bf16 autocast on a CPU with native bf16, float32 elsewhere: the step gets that dtype and the run says so.
    import locseg_cli.runtime.device as device_mod
    import locseg_cli.training.trainer as trainer

    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: native)
    seen, step = [], trainer.train_step

    def recording(*args, **kw):
        seen.append(args[-1])
        return step(*args, **kw)

    monkeypatch.setattr(trainer, "train_step", recording)
    train(pre, tmp_path / "run", _cfg(model="locbam", epochs=1))
    expected = torch.bfloat16 if native else None
    assert seen and all(s is expected for s in seen)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["extra"]["precision"] == ("bfloat16" if native else "float32")


def test_the_loader_pins_memory_as_the_guard_says_for_the_run_device(pre, tmp_path, monkeypatch):
    # pinned host batches (non-blocking copies) on CUDA only; the guard itself: tests/runtime/test_pin_memory.py
    import locseg_cli.training.trainer as trainer
    from locseg_cli.sampling import PatchBatches

    devices, pinned, loader = [], [], PatchBatches.loader

    def guard(device):
        devices.append(device)
        return False

    def recording(self, *args, **kw):
        pinned.append(kw.get("pin_memory"))
        return loader(self, *args, **kw)

    monkeypatch.setattr(trainer, "pin_memory_for", guard)
    monkeypatch.setattr(PatchBatches, "loader", recording)
    train(pre, tmp_path / "run", _cfg(model="baseline", epochs=1, iterations_per_epoch=1))
    assert devices == [torch.device("cpu")] and pinned == [False]
