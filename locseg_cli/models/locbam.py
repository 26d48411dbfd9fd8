"""LocBAM: three 1D location-aware attention gates (one per axis) and a 1x1x1 fusion (paper §2.1).

Per axis a: average-pool the feature map over the two other axes -> (B, C, L_a); add the pooled
location channel of axis a (the coordinate of THAT axis, unlike the public code on AMOS/KiTS);
dropout; Conv1d k1 C->ceil(C/r) (no bias), norm, ReLU; [Conv1d k mid->2mid, norm, ReLU;]
Conv1d k ->C; sigmoid. Each gate multiplies the map along its axis; the three gated maps are
concatenated (3C) and fused back to C by a 1x1x1 conv.

The gating and fusion together are one linear map per voxel, y = b + sum_a W_a (x * g_a). The
fused implementation (`gate_fusion`) computes it slab by slab in cache-sized pieces and recomputes
in backward, so the 3C-channel full-resolution map is never materialised or kept for backward.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Voxel-channel elements per slab of the fused pass: small enough that the 3C-channel temporary
# stays in cache on CPU; large on accelerators, where per-slab launch cost dominates.
_CPU_SLAB_ELEMENTS = 1 << 16
_GPU_SLAB_ELEMENTS = 1 << 24


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
    """Location-based attention on a (B, C, D, H, W) map, gate a fed location channel a."""

    def __init__(self, channels: int, reduction: int = 32, kernel: int = 3, layers: int = 3,
                 dropout: float = 0.1, norm: str = "batch", inject: str = "input", fused: bool = True) -> None:
        super().__init__()
        self.channels = int(channels)
        self.fused = bool(fused)
        self.gates = nn.ModuleList(AxisGate(channels, reduction, kernel, layers, dropout, norm, inject)
                                   for _ in range(3))
        self.fuse = nn.Conv3d(3 * channels, channels, kernel_size=1)

    def axis_gates(self, x: Tensor, location: Tensor) -> list[Tensor]:
        """The three gates (B, C, L_a), gate a computed from features and location pooled onto axis a."""
        pooled = axis_means(x) if self.fused else [x.mean(dim=_others(a)) for a in range(3)]
        out = []
        for a, gate in enumerate(self.gates):
            position = location[:, a:a + 1].mean(dim=_others(a)).to(pooled[a].dtype)
            out.append(gate(pooled[a], position))
        return out

    def forward(self, x: Tensor, location: Tensor) -> Tensor:
        g = self.axis_gates(x, location)
        if self.fused:
            w = self.fuse.weight.view(self.channels, 3 * self.channels)
            return gate_fusion(x, g[0], g[1], g[2], w, self.fuse.bias)
        return self.fuse(naive_gated_concat(x, g))


def _others(axis: int) -> tuple[int, int]:
    return tuple(d for d in (2, 3, 4) if d != 2 + axis)  # type: ignore[return-value]


def axis_means(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x (B, C, D, H, W) averaged onto each axis: (B, C, D), (B, C, H), (B, C, W), in one pass over x."""
    return _AxisMeans.apply(x)


def naive_gated_concat(x: Tensor, gates: list[Tensor]) -> Tensor:
    """The straightforward form: three gated copies of x concatenated to 3C channels."""
    g0, g1, g2 = gates
    return torch.cat([x * g0[:, :, :, None, None], x * g1[:, :, None, :, None], x * g2[:, :, None, None, :]], 1)


def gate_fusion(x: Tensor, g0: Tensor, g1: Tensor, g2: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """y = bias + sum_a W_a (x * g_a) with W = [W_0 | W_1 | W_2] (C_out, 3C), in one recomputing pass.

    Same values and gradients as `fuse(naive_gated_concat(x, g))`; only x is kept for backward.
    """
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    return _GateFusion.apply(x, g0, g1, g2, weight, bias)


def _slab_depth(x: Tensor) -> int:
    return _slab_depth_of(x.shape, x.device)


def _slab_depth_of(shape: torch.Size | tuple[int, ...], device: torch.device) -> int:
    """Axial slices per slab: as many as fit the element budget, at least one."""
    _, c, d, h, w = shape
    budget = _CPU_SLAB_ELEMENTS if device.type == "cpu" else _GPU_SLAB_ELEMENTS
    return max(1, min(d, budget // max(1, c * h * w)))


class _GateFusion(torch.autograd.Function):
    """Slab-wise y = b + W z with z = [x*g0; x*g1; x*g2] rebuilt per slab of axial slices."""

    @staticmethod
    def forward(ctx, x: Tensor, g0: Tensor, g1: Tensor, g2: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.dtypes = (g0.dtype, g1.dtype, g2.dtype, weight.dtype, bias.dtype)
        x = x.contiguous()
        dt = x.dtype
        g0, g1, g2 = g0.to(dt).contiguous(), g1.to(dt).contiguous(), g2.to(dt).contiguous()
        w, b = weight.to(dt), bias.to(dt)
        bsz, c, d, h, wd = x.shape
        co = w.shape[0]
        hw = h * wd
        y = x.new_empty(bsz, co, d, h, wd)
        step = _slab_depth(x)
        zbuf = x.new_empty(3 * c * step * hw)
        for i in range(bsz):
            xi, yi = x[i], y[i].view(co, d * hw)
            g1i, g2i = g1[i].view(c, 1, h, 1), g2[i].view(c, 1, 1, wd)
            for d0 in range(0, d, step):
                n = min(step, d - d0)
                z = zbuf[:3 * c * n * hw].view(3, c, n, h, wd)
                xc = xi[:, d0:d0 + n]
                torch.mul(xc, g0[i, :, d0:d0 + n].view(c, n, 1, 1), out=z[0])
                torch.mul(xc, g1i, out=z[1])
                torch.mul(xc, g2i, out=z[2])
                torch.addmm(b[:, None].expand(co, n * hw), w, z.view(3 * c, n * hw),
                            out=yi[:, d0 * hw:(d0 + n) * hw])
        ctx.save_for_backward(x, g0, g1, g2, w)
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, g0, g1, g2, w = ctx.saved_tensors
        gy = gy.contiguous().to(x.dtype)
        bsz, c, d, h, wd = x.shape
        co = w.shape[0]
        hw = h * wd
        gx = torch.empty_like(x)
        gw = w.new_zeros(co, 3 * c)
        gg0 = g0.new_empty(bsz, c, d)
        gg1 = g1.new_zeros(bsz, c, h)
        gg2 = g2.new_zeros(bsz, c, wd)
        step = _slab_depth(x)
        zbuf = x.new_empty(3 * c * step * hw)
        vbuf = x.new_empty(3 * c * step * hw)
        wt = w.t()
        for i in range(bsz):
            xi, gyi = x[i], gy[i].view(co, d * hw)
            g1i, g2i = g1[i].view(c, 1, h, 1), g2[i].view(c, 1, 1, wd)
            for d0 in range(0, d, step):
                n = min(step, d - d0)
                xc = xi[:, d0:d0 + n]
                g0c = g0[i, :, d0:d0 + n].view(c, n, 1, 1)
                gyc = gyi[:, d0 * hw:(d0 + n) * hw]
                z = zbuf[:3 * c * n * hw].view(3, c, n, h, wd)
                torch.mul(xc, g0c, out=z[0])
                torch.mul(xc, g1i, out=z[1])
                torch.mul(xc, g2i, out=z[2])
                gw.addmm_(gyc, z.view(3 * c, n * hw).t())
                v = vbuf[:3 * c * n * hw].view(3, c, n, h, wd)
                torch.mm(wt, gyc, out=v.view(3 * c, n * hw))
                gxc = gx[i, :, d0:d0 + n]
                torch.mul(v[0], g0c, out=gxc)
                gxc.addcmul_(v[1], g1i)
                gxc.addcmul_(v[2], g2i)
                v.mul_(xc)
                gg0[i, :, d0:d0 + n] = v[0].sum(dim=(2, 3))
                gg1[i] += v[1].sum(dim=(1, 3))
                gg2[i] += v[2].sum(dim=(1, 2))
        gb = gy.sum(dim=(0, 2, 3, 4))
        t0, t1, t2, tw, tb = ctx.dtypes
        return gx, gg0.to(t0), gg1.to(t1), gg2.to(t2), gw.to(tw), gb.to(tb)


class _AxisMeans(torch.autograd.Function):
    """The three axis profiles of x read slab by slab; backward writes their broadcast sum in one pass."""

    @staticmethod
    def forward(ctx, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = x.contiguous()
        bsz, c, d, h, wd = x.shape
        m0 = x.new_empty(bsz, c, d)
        m1 = x.new_zeros(bsz, c, h)
        m2 = x.new_zeros(bsz, c, wd)
        step = _slab_depth(x)
        for i in range(bsz):
            for d0 in range(0, d, step):
                xc = x[i, :, d0:d0 + step]
                m0[i, :, d0:d0 + step] = xc.sum(dim=(2, 3))
                m1[i] += xc.sum(dim=(1, 3))
                m2[i] += xc.sum(dim=(1, 2))
        ctx.shape = x.shape
        return m0 / (h * wd), m1 / (d * wd), m2 / (d * h)

    @staticmethod
    def backward(ctx, g0: Tensor, g1: Tensor, g2: Tensor) -> Tensor:
        bsz, c, d, h, wd = ctx.shape
        dtype = next(g.dtype for g in (g0, g1, g2) if g is not None)
        device = next(g.device for g in (g0, g1, g2) if g is not None)
        g0 = (g0 / (h * wd)) if g0 is not None else torch.zeros(bsz, c, d, dtype=dtype, device=device)
        g1 = (g1 / (d * wd)) if g1 is not None else torch.zeros(bsz, c, h, dtype=dtype, device=device)
        g2 = (g2 / (d * h)) if g2 is not None else torch.zeros(bsz, c, wd, dtype=dtype, device=device)
        gx = torch.empty(ctx.shape, dtype=dtype, device=device)
        step = _slab_depth_of(ctx.shape, device)
        for i in range(bsz):
            plane = (g1[i].view(c, 1, h, 1) + g2[i].view(c, 1, 1, wd))  # (c, 1, h, w), small
            for d0 in range(0, d, step):
                n = min(step, d - d0)
                torch.add(g0[i, :, d0:d0 + n].view(c, n, 1, 1), plane, out=gx[i, :, d0:d0 + n])
        return gx
