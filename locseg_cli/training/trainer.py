"""The training loop: nnU-Net v2's protocol (SGD, poly, DiceCE, clip 12) on location-aware patches.

Repeatable and resumable: batches are a function of (seed, rank, iteration) and the torch RNG is
re-seeded from the same triple each iteration, so a run resumed from its `last` checkpoint ends
bitwise equal to an uninterrupted one. Under torchrun each rank draws its own patches, DDP averages
the gradients, and rank 0 alone writes checkpoints, metrics and the manifest.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import config_dict
from ..errors import LocsegError
from ..io.atomic import atomic_path, write_text
from ..io.manifest import Manifest, StageWriter
from ..models import build_model
from ..models.layout import resolve_memory_format, to_layout
from ..models.location_input import model_location
from ..preprocessing.plan import PreprocessPlan
from ..progress import NullProgress, Progress
from ..runtime.checkpoint import CHECKPOINT_DIR, load_checkpoint, save_checkpoint, unwrap_model
from ..runtime.device import (
    DistInfo,
    autocast_dtype,
    barrier,
    broadcast,
    destroy_process_group,
    dist_info,
    init_process_group,
    pin_memory_for,
    resolve_device,
)
from ..sampling import PatchBatches, PatchSampler
from .config import TrainConfig
from .expectations import StepProbe
from .init_from import InitSource, load_init_weights
from .result import TrainResult
from .validation import validate


def lr_at(cfg: TrainConfig, iteration: int) -> float:
    """nnU-Net's poly schedule, stepped per epoch."""
    epoch = iteration // cfg.iterations_per_epoch
    return cfg.lr * (1 - epoch / cfg.epochs) ** cfg.poly_power


def _iteration_seed(cfg: TrainConfig, rank: int, iteration: int) -> int:
    return (cfg.seed * 1_000_003 + rank * 7919 + iteration) % (2**63)


def make_loss():
    """DiceCE as in the paper's code (MONAI; softmax, batch Dice, no background, squared predictions)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True, batch=True, include_background=False, squared_pred=True)


def train_step(net: torch.nn.Module, model: torch.nn.Module, optimizer, loss_fn, image: torch.Tensor,
               location: torch.Tensor, label: torch.Tensor, grad_clip: float, scaler=None,
               amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """One optimisation step (autocast when `amp_dtype`, GradScaler when `scaler`, gradient clipping).

    `net` is what runs forward (possibly compiled or DDP-wrapped), `model` owns the parameters. A
    non-finite loss skips the update (the caller decides what to do) and is returned as it is.
    """
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(image.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = net(image, location)
    loss = loss_fn(logits.float(), label)
    if not torch.isfinite(loss):
        return loss.detach()
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return loss.detach()


def batch_to_device(batch: dict[str, torch.Tensor], device: torch.device, layout: torch.memory_format,
                    needs_location_channels: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A lean sampler batch on the device, as the step takes it: (image, location, int64 label).

    The batch crosses to the device as it is (image and uint8 label in the volumes' memory order,
    location as per-axis vectors; `non_blocking` overlaps the copy with the step where the loader
    pins memory). On the device: the image made contiguous, then put in the network's layout; the
    location broadcast to channels for a model that concatenates them; labels widened for the loss.
    """
    image = to_layout(batch["image"].to(device, non_blocking=True).contiguous(), layout)
    location = model_location(needs_location_channels, batch["location"].to(device, non_blocking=True),
                              image.shape[2:], layout)
    label = batch["label"].to(device, non_blocking=True).to(torch.long, memory_format=torch.contiguous_format)
    return image, location, label


def make_optimizer(cfg: TrainConfig, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Keep only the metric lines up to `iteration` (a resumed run rewrites what follows)."""
    if not path.is_file():
        return
    keep = []
    for ln in path.read_text().splitlines():
        try:
            record = json.loads(ln)
        except json.JSONDecodeError:  # a line cut short by a kill: the resumed run writes it again
            continue
        if record["iteration"] <= iteration:
            keep.append(ln)
    write_text(path, "".join(ln + "\n" for ln in keep))


@dataclass
class _Session:
    """Everything one training run works with, resolved once."""

    pre: Path
    out: Path
    cfg: TrainConfig
    manifest: Manifest
    labels: dict[str, str]
    train_ids: list[str]
    val_ids: list[str]  # the fold's validation cases (held-out evaluation uses all of them)
    monitor_ids: list[str]  # the ones validated during training (`val_cases` limits them)
    model: torch.nn.Module
    sampler: PatchSampler
    device: torch.device
    info: DistInfo
    progress: Progress
    plan: PreprocessPlan | None = None  # what the run embeds in its manifest (`plan.run_json()`)
    inputs: dict | None = None  # the manifest's inputs: the preprocessed data (+ the --init-from checkpoint)
    init: dict | None = None  # how --init-from started the weights (recorded in the manifest)


def run_training(pre: Path, out: Path, cfg: TrainConfig, manifest: Manifest, plan: PreprocessPlan,
                 train_ids: list[str], val_ids: list[str], force: bool = False,
                 progress: Progress | None = None, inputs: dict | None = None,
                 init_source: InitSource | None = None) -> TrainResult:
    """The part of `train` that needs torch: model, sampler, process group, loop (see `training.stage`)."""
    info = dist_info()
    labels = plan.labels
    monitor_ids = val_ids[: cfg.val_cases] if cfg.val_cases is not None else val_ids
    if cfg.batch_size % info.world_size:
        raise LocsegError(f"--batch-size {cfg.batch_size} is not divisible by the {info.world_size} processes")
    torch.manual_seed(cfg.seed)  # the initial weights are part of a repeatable run
    model = build_model(cfg)  # fails early on an unknown model name
    progress = progress or NullProgress()
    init = load_init_weights(model, cfg, init_source, labels) if init_source is not None else None
    if init and "message" in init:
        progress.log(init["message"])
    device = resolve_device(cfg.device, info)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    sampler = PatchSampler(pre, manifest, train_ids, cfg.patch_size, cfg.batch_size // info.world_size,
                           seed=cfg.seed, rank=info.rank, sampling=cfg.sampling,
                           foreground_fraction=cfg.foreground_fraction, volumes_per_batch=cfg.volumes_per_batch)
    s = _Session(pre, out, cfg, manifest, labels, train_ids, val_ids, monitor_ids, model, sampler, device, info,
                 progress, plan, inputs or {"pre": (pre, manifest.fingerprint)}, init)
    init_process_group(info, device)
    try:
        return _resume_or_start(s, force)
    finally:
        destroy_process_group(info)


def _resume_or_start(s: _Session, force: bool) -> TrainResult:
    """Rank 0 decides: up to date, resume from `last.pt` (same fingerprint), or start afresh."""
    writer = None
    state = {"up_to_date": False, "start": 0, "checkpoint": None}
    if s.info.is_main:
        writer = StageWriter("train", s.out, config_dict(s.cfg), s.inputs, force).__enter__()
    try:
        if s.info.is_main:
            ckpt_path = s.out / CHECKPOINT_DIR / "last.pt"
            if writer.up_to_date:
                state["up_to_date"] = True
            elif ckpt_path.is_file() and not force:
                ck = load_checkpoint(ckpt_path)
                if ck.get("fingerprint") == writer.fingerprint:
                    state["start"], state["checkpoint"] = int(ck["iteration"]), str(ckpt_path)
        state = broadcast(state, s.info)
        if state["up_to_date"]:
            best = writer.previous.extra.get("best_mean_dice") if writer else None
            return TrainResult(s.out, False, s.cfg.total_iterations, best)
        return _loop(s, writer, state)
    finally:
        if writer is not None:
            writer.__exit__(*sys.exc_info())  # the exception in flight, if any (a full disk is one line)


def _loop(s: _Session, writer: StageWriter | None, state: dict) -> TrainResult:
    pre, out, cfg, manifest, labels = s.pre, s.out, s.cfg, s.manifest, s.labels
    model, device, info, progress = s.model, s.device, s.info, s.progress
    layout = resolve_memory_format(cfg.memory_format, device)
    model.to(device, memory_format=layout)
    needs_channels = getattr(model, "needs_location_channels", True)
    if info.enabled:
        from ..models import convert_sync_batchnorm

        if device.type == "cuda":  # SyncBatchNorm exists on GPUs only; on CPU (gloo) each rank keeps its own
            model = convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(cfg, model.parameters())
    amp_dtype = autocast_dtype(cfg.amp, cfg.amp_dtype, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    start, best = state["start"], None
    if state["checkpoint"]:
        ck = load_checkpoint(Path(state["checkpoint"]), map_location=device)
        unwrap_model(model).load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        best = ck.get("best_mean_dice")
    net = torch.compile(model) if cfg.compile else model
    loss_fn = make_loss()
    metrics_path = out / "metrics.jsonl"
    ckpt_dir = out / CHECKPOINT_DIR
    fingerprint = writer.fingerprint if writer else ""
    if info.is_main:
        _truncate_metrics(metrics_path, start)
        write_text(out / "config.json", json.dumps(config_dict(cfg), indent=2) + "\n")
    total = cfg.total_iterations
    loader = PatchBatches(s.sampler).loader(start, total, workers=cfg.workers, pin_memory=pin_memory_for(device))
    progress.start(f"train {cfg.model}", total)
    progress.advance(start)
    probe = StepProbe(cfg, device.type, total) if info.is_main else None  # CPU runs of GPU size say so early
    last_val, rate = None, None
    t_last, n_last = time.perf_counter(), 0
    metrics_file = open(metrics_path, "a") if info.is_main else None
    try:
        for it, batch in enumerate(loader, start=start):
            torch.manual_seed(_iteration_seed(cfg, info.rank, it))
            lr = lr_at(cfg, it)
            for g in optimizer.param_groups:
                g["lr"] = lr
            img, loc, lab = batch_to_device(batch, device, layout, needs_channels)
            loss = train_step(net, model, optimizer, loss_fn, img, loc, lab, cfg.grad_clip, scaler, amp_dtype)
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at iteration {it}; lower --lr or disable --amp")
            done = it + 1
            n_last += img.shape[0] * max(info.world_size, 1)
            fields = {"loss": float(loss.item()), "lr": lr}
            if info.is_main and (done % cfg.log_every == 0 or done == total):
                now = time.perf_counter()
                rate = n_last / max(now - t_last, 1e-9)
                t_last, n_last = now, 0
                _log(metrics_file, {"iteration": done, "epoch": it // cfg.iterations_per_epoch, "loss": fields["loss"],
                                    "lr": lr, "patches_per_s": rate})
            is_val = s.monitor_ids and ((cfg.val_every and done % cfg.val_every == 0) or done == total)
            if is_val:
                if info.is_main:
                    last_val = validate(unwrap_model(model), pre, manifest, s.monitor_ids, labels, cfg.patch_size,
                                        cfg.val_overlap, cfg.sw_batch_size, device, amp=cfg.amp, layout=layout)
                    _log(metrics_file, {"iteration": done, "val_dice": last_val["dice"],
                                        "val_mean_dice": last_val["mean_dice"]})
                    if best is None or last_val["mean_dice"] > best:
                        best = last_val["mean_dice"]
                        save_checkpoint(ckpt_dir / "best.pt", model, optimizer, scaler, done, best, fingerprint, cfg)
                barrier(info)
            if info.is_main and (done % cfg.checkpoint_every == 0 or done == total):
                save_checkpoint(ckpt_dir / "last.pt", model, optimizer, scaler, done, best, fingerprint, cfg)
            if rate is not None:
                fields["patches/s"] = round(rate, 1)
            if last_val is not None:
                fields["val_dice"] = last_val["mean_dice"]
            progress.advance(1, **fields)
            advice = probe.step(done) if probe else None
            if advice:
                progress.log(advice)
    finally:
        if metrics_file:
            metrics_file.close()
    progress.stop()
    if info.is_main:
        if not s.monitor_ids:  # nothing to choose from: the final weights are the best we know
            with atomic_path(ckpt_dir / "best.pt") as tmp:
                shutil.copyfile(ckpt_dir / "last.pt", tmp)
        extra = {"labels": labels, "fold": cfg.fold, "train_cases": s.train_ids, "val_cases": s.val_ids,
                 "monitored_cases": s.monitor_ids,
                 "best_mean_dice": best, "final_validation": last_val, "world_size": info.world_size,
                 "device": str(device), "precision": str(amp_dtype or torch.float32).removeprefix("torch."),
                 "preprocess": s.plan.run_json()}
        if s.init is not None:
            extra["init_from"] = {k: v for k, v in s.init.items() if k != "message"}
        writer.finish(extra)
    return TrainResult(out, True, total, best)


def _log(f, record: dict) -> None:
    f.write(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}) + "\n")
    f.flush()
