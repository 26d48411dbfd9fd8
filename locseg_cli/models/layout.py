"""The memory layout the network computes in.

On CPU, PyTorch's 3-D convolutions (oneDNN) run fastest with activations stored channels-last
(N, D, H, W, C in memory): `locseg train`'s step of the CPU U-Net ran 1.43x the plain default-layout loop at
32³ x 8 (docs/benchmarks.md, "Training throughput"). Every model computes in either layout (the fused
LocBAM path has a native channels-last form), with the same numbers up to float rounding. On CUDA
the default layout stays the default until measured otherwise.
"""

from __future__ import annotations

import torch

from .config import MemoryFormat


def resolve_memory_format(name: MemoryFormat, device: torch.device) -> torch.memory_format:
    """`auto`: channels-last 3-D on CPU, the default (contiguous) layout elsewhere."""
    if name == "channels_last" or (name == "auto" and device.type == "cpu"):
        return torch.channels_last_3d
    return torch.contiguous_format


def to_layout(t: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    """A 5-D tensor in `fmt` (a no-op when it already is); tensors of other ranks unchanged."""
    return t.contiguous(memory_format=fmt) if t.dim() == 5 else t


def is_channels_last(x: torch.Tensor) -> bool:
    """x is 5-D and stored N, D, H, W, C, and not also in the default layout (one channel, say), so
    layers take their channels-last path only where the layout is unambiguous. Never while `tracing()`:
    the channels-last forms call oneDNN directly, which an exported graph cannot hold."""
    return (x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)
            and not tracing())


def tracing() -> bool:
    """True while `torch.jit.trace` or `torch.export` (which the ONNX exporter runs) records the model.

    Layers whose fast form is a custom autograd function, a oneDNN call or a shape-dependent Python
    loop (the 2x max-pool, the fused LocBAM pass, the channels-last layers) then run their plain form:
    the same maths in standard ops, which both tracers record and ONNX can express (`locseg export`).
    """
    return torch.jit.is_tracing() or torch.compiler.is_exporting()
