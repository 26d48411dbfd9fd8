"""torchrun/DDP plumbing: which rank am I, and one place that starts and ends the process group."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a device or process group is needed, not to read the rank layout
    import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read the rank layout torchrun exports (single process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)))


def resolve_device(requested: str | None, info: DistInfo) -> torch.device:
    """cuda:<local_rank> under torchrun with CUDA, else the requested device (default: cuda if available)."""
    import torch

    from ..errors import LocsegError

    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(requested)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LocsegError("--device cuda requested but CUDA is not available")
        if info.enabled:
            dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles and AVX-512 BF16), where oneDNN's bf16
    convolutions beat float32; elsewhere bf16 is emulated and slower than float32."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return all(f is not None and f() for f in probe)


def autocast_dtype(amp: bool, amp_dtype: str, device: torch.device) -> torch.dtype | None:
    """The dtype the forward pass autocasts to, or None for float32.

    CUDA: bf16 or fp16 as asked. CPU: bf16 where the CPU has native bf16 (`cpu_has_native_bf16`), float32
    otherwise and for fp16 (CPU fp16 convolutions are not faster); the training step of the CPU presets ran
    1.3x (32³ x 8) to 2.2-3x (64³ x 1) faster in bf16 on such a CPU (docs/benchmarks.md).
    """
    import torch

    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if amp_dtype == "bf16" else torch.float16
    if device.type == "cpu" and amp_dtype == "bf16" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def pin_memory_for(device: torch.device) -> bool:
    """Whether host batches should be page-locked: only for a CUDA device that exists. There the
    copies can run asynchronously (`non_blocking`) beside the step; elsewhere pinning only costs."""
    import torch

    return device.type == "cuda" and torch.cuda.is_available()


def init_process_group(info: DistInfo, device: torch.device) -> None:
    import torch

    if info.enabled and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def destroy_process_group(info: DistInfo) -> None:
    import torch

    if info.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def broadcast(obj, info: DistInfo):
    """Rank 0's `obj` on every rank."""
    import torch

    if not info.enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    import torch

    if info.enabled:
        torch.distributed.barrier()
