"""LocBAM: three 1D location-aware attention gates (one per axis) and a 1x1x1 fusion (paper §2.1).

Per axis a: average-pool the feature map over the two other axes -> (B, C, L_a); add the pooled
location channel of axis a (the coordinate of THAT axis, unlike the public code on AMOS/KiTS; the
channel is constant over the two other axes, so its pooled form is its per-axis profile, read as such);
dropout; Conv1d k1 C->ceil(C/r) (no bias), norm, ReLU; [Conv1d k mid->2mid, norm, ReLU;]
Conv1d k ->C; sigmoid. Each gate multiplies the map along its axis; the three gated maps are
concatenated (3C) and fused back to C by a 1x1x1 conv.

This module is the block as the paper describes it; `locbam_fused` computes the same numbers
(pooling, stacked gates, gating + fusion in one recomputing pass) for speed and memory, and is what
`LocBAM(fused=True)`, the default, runs. `fused=False`, and any model while it is traced for export,
runs the straightforward form below.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .layout import tracing
from .location_input import axis_profiles
from .locbam_fused import axis_means, gate_fusion, stacked_gates


def _norm1d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "instance":
        return nn.InstanceNorm1d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown gate norm {kind!r}")


class AxisGate(nn.Module):
    """HANet's 1D attention gate for one axis: pooled features (+ pooled location) -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 32, kernel: int = 3, layers: int = 3,
                 dropout: float = 0.1, norm: str = "batch", inject: str = "input") -> None:
        super().__init__()
        if inject not in ("input", "mid", "none"):
            raise ValueError(f"unknown position injection point {inject!r}")
        if layers not in (2, 3):
            raise ValueError(f"layers must be 2 or 3, got {layers}")
        mid = math.ceil(channels / reduction)
        pad = kernel // 2
        self.inject = inject
        self.dropout = nn.Dropout1d(dropout) if dropout > 0 else nn.Identity()
        self.first = nn.Sequential(nn.Conv1d(channels, mid, 1, bias=False), _norm1d(norm, mid), nn.ReLU(inplace=True))
        if layers == 2:
            self.rest = nn.Sequential(nn.Conv1d(mid, channels, kernel, padding=pad))
        else:
            self.rest = nn.Sequential(nn.Conv1d(mid, 2 * mid, kernel, padding=pad), _norm1d(norm, 2 * mid),
                                      nn.ReLU(inplace=True), nn.Conv1d(2 * mid, channels, kernel, padding=pad))

    def forward(self, pooled: Tensor, position: Tensor) -> Tensor:
        """`pooled` (B, C, L), `position` (B, 1, L) -> gate (B, C, L) in (0, 1)."""
        h = pooled + position if self.inject == "input" else pooled
        h = self.first(self.dropout(h))
        if self.inject == "mid":
            h = h + position
        return torch.sigmoid(self.rest(h))


class LocBAM(nn.Module):
    """Location-based attention on a (B, C, D, H, W) map, gate a fed location channel a (or the per-axis
    vectors: `models.location_input`)."""

    def __init__(self, channels: int, reduction: int = 32, kernel: int = 3, layers: int = 3,
                 dropout: float = 0.1, norm: str = "batch", inject: str = "input", fused: bool = True) -> None:
        super().__init__()
        self.channels = int(channels)
        self.fused = bool(fused)
        self.gates = nn.ModuleList(AxisGate(channels, reduction, kernel, layers, dropout, norm, inject)
                                   for _ in range(3))
        self.fuse = nn.Conv3d(3 * channels, channels, kernel_size=1)

    def runs_fused(self) -> bool:
        """The fused pass, unless off or a tracer records the model (export): it then runs the
        straightforward form, the same numbers in standard ops (custom autograd functions and the
        fused pass's shape-dependent piece loop cannot be exported)."""
        return self.fused and not tracing()

    def axis_gates(self, x: Tensor, location: Tensor) -> list[Tensor]:
        """The three gates (B, C, L_a), gate a computed from features and location pooled onto axis a."""
        fused = self.runs_fused()
        pooled = axis_means(x) if fused else [x.mean(dim=_others(a)) for a in range(3)]
        positions = [p[:, None, :].to(pooled[a].dtype) for a, p in enumerate(axis_profiles(location, x.shape[2:]))]
        if fused and pooled[0].shape == pooled[1].shape == pooled[2].shape:  # cubic patches
            return list(stacked_gates(self.gates, torch.stack(pooled), torch.stack(positions)).unbind(0))
        return [gate(pooled[a], positions[a]) for a, gate in enumerate(self.gates)]

    def forward(self, x: Tensor, location: Tensor) -> Tensor:
        g = self.axis_gates(x, location)
        if self.runs_fused():
            w = self.fuse.weight.view(self.channels, 3 * self.channels)
            return gate_fusion(x, g[0], g[1], g[2], w, self.fuse.bias)
        return self.fuse(naive_gated_concat(x, g))


def _others(axis: int) -> tuple[int, int]:
    return tuple(d for d in (2, 3, 4) if d != 2 + axis)  # type: ignore[return-value]


def naive_gated_concat(x: Tensor, gates: list[Tensor]) -> Tensor:
    """The straightforward form: three gated copies of x concatenated to 3C channels."""
    g0, g1, g2 = gates
    return torch.cat([x * g0[:, :, :, None, None], x * g1[:, :, None, :, None], x * g2[:, :, None, None, :]], 1)
