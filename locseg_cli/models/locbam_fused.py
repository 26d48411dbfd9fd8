"""The fused LocBAM path: the block's numbers computed with less time and memory.

The gating and fusion together are one linear map per voxel, y = b + sum_a W_a (x * g_a). `gate_fusion`
computes it piece by piece (whole patches batched together while they fit an element budget, else
slabs of axial slices) and recomputes in backward, so the 3C-channel full-resolution map is never
materialised or kept for backward. The axis profiles are read in one pass (`axis_means`) and hand
their gradient back as broadcast views that autograd adds in place; the three gates of a cubic patch
run stacked (`stacked_gates`), a third of the tiny ops.

Both memory layouts run natively: the default (contiguous N, C, D, H, W) and channels-last 3-D
(N, D, H, W, C in memory), which the CPU convolutions run fastest in. A channels-last input gives a
channels-last output with no layout conversion in between. Tests compare values and gradients of
every path with `naive_gated_concat` followed by the 1x1x1 convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layout import is_channels_last

_CL = torch.channels_last_3d

# Voxel-channel elements of x per piece of the fused pass. CPU: a few axial slices (4 at 32^3 x 32
# channels, 1 at 64^3), so the 3C-channel temporary stays near the cache while the Python loop
# stays short (2^16..2^19 measured: 2^17 best or tied at 32^3 and 64^3). Accelerators: whole patches
# batched together (16 patches of 32^3 x 32 per piece; the temporary stays ~100-200 MB).
_CPU_SLAB_ELEMENTS = 1 << 17
_GPU_SLAB_ELEMENTS = 1 << 24


def stacked_gates(gates: Sequence[nn.Module], pooled: Tensor, position: Tensor) -> Tensor:
    """Gates of equal length evaluated together: `pooled` (G, B, C, L), `position` (G, B, 1, L) -> (G, B, C, L).

    The same computation as `gates[a](pooled[a], position[a])` for each a (each gate its own
    weights, norm statistics and running statistics; dropout drops whole channels per gate and
    sample), with a third of the tiny ops: at small maps their per-op cost is most of a gate's.
    Convolutions run as batched matmuls (a k>1 Conv1d on CPU otherwise goes to oneDNN, slow at L~32).
    """
    first = gates[0]
    h = pooled + position if first.inject == "input" else pooled
    if isinstance(first.dropout, nn.Dropout1d):
        g, bsz, c, length = h.shape
        h = F.dropout1d(h.reshape(g * bsz, c, length), first.dropout.p, first.dropout.training).view(g, bsz, c, length)
    h = _stacked_layers([gate.first for gate in gates], h)
    if first.inject == "mid":
        h = h + position
    return torch.sigmoid(_stacked_layers([gate.rest for gate in gates], h))


def _stacked_layers(seqs: list[nn.Sequential], h: Tensor) -> Tensor:
    for layers in zip(*seqs):
        if isinstance(layers[0], nn.Conv1d):
            h = _stacked_conv(layers, h)
        elif isinstance(layers[0], nn.ReLU):
            h = F.relu(h)
        elif isinstance(layers[0], (nn.BatchNorm1d, nn.InstanceNorm1d)):
            h = _stacked_norm(layers, h)
        elif not isinstance(layers[0], nn.Identity):
            raise TypeError(f"no stacked form of {type(layers[0]).__name__}")
    return h


def _stacked_conv(convs: tuple[nn.Conv1d, ...], h: Tensor) -> Tensor:
    """Per-gate Conv1d (stride 1, 'same' padding) on (G, B, Cin, L) as one batched matmul."""
    g, bsz, cin, length = h.shape
    k = convs[0].kernel_size[0]
    if k > 1:
        pad = convs[0].padding[0]
        h = F.pad(h, (pad, pad)).unfold(-1, k, 1).transpose(-1, -2).reshape(g, bsz, cin * k, length)
    weight = torch.stack([conv.weight for conv in convs]).view(g, 1, -1, cin * k)
    out = torch.matmul(weight, h)
    if convs[0].bias is not None:
        out = out + torch.stack([conv.bias for conv in convs])[:, None, :, None]
    return out


def _stacked_norm(norms: tuple[nn.Module, ...], h: Tensor) -> Tensor:
    """Per-gate BatchNorm1d / InstanceNorm1d on (G, B, C, L): one call over G*C channels."""
    g, bsz, c, length = h.shape
    first = norms[0]
    flat = h.transpose(0, 1).reshape(bsz, g * c, length)
    weight = torch.cat([n.weight for n in norms]) if first.affine else None
    bias = torch.cat([n.bias for n in norms]) if first.affine else None
    if isinstance(first, nn.InstanceNorm1d):
        if first.track_running_stats:
            raise TypeError("no stacked form of InstanceNorm1d with running statistics")
        out = F.instance_norm(flat, weight=weight, bias=bias, eps=first.eps)
    else:  # nn.BatchNorm1d, the same bookkeeping as its forward
        factor = 0.0 if first.momentum is None else first.momentum
        if first.training and first.track_running_stats:
            for n in norms:
                n.num_batches_tracked.add_(1)
            if first.momentum is None:
                factor = 1.0 / float(first.num_batches_tracked)
        tracked = first.running_mean is not None
        mean = torch.cat([n.running_mean for n in norms]) if tracked else None
        var = torch.cat([n.running_var for n in norms]) if tracked else None
        out = F.batch_norm(flat, mean, var, weight, bias, first.training or not tracked, factor, first.eps)
        if tracked and first.training:
            for a, n in enumerate(norms):
                n.running_mean.copy_(mean[a * c:(a + 1) * c])
                n.running_var.copy_(var[a * c:(a + 1) * c])
    return out.view(bsz, g, c, length).transpose(0, 1)


def axis_means(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x (B, C, D, H, W) averaged onto each axis: (B, C, D), (B, C, H), (B, C, W), in one pass over x."""
    m0, s1, s2 = _DepthMeans.apply(x)
    m1, m2 = _PlaneMeans.apply(x, s1, s2)
    return m0, m1, m2


def gate_fusion(x: Tensor, g0: Tensor, g1: Tensor, g2: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """y = bias + sum_a W_a (x * g_a) with W = [W_0 | W_1 | W_2] (C_out, 3C), in one recomputing pass.

    Same values and gradients as `fuse(naive_gated_concat(x, g))`; only x is kept for backward. A
    channels-last x gives a channels-last y.
    """
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    fn = _GateFusionChannelsLast if is_channels_last(x) else _GateFusion
    return fn.apply(x, g0, g1, g2, weight, bias)


def _plan(shape: torch.Size | tuple[int, ...], device: torch.device) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """How the fused pass walks the map: [(b0, b1, [(d0, n), ...])], each piece within the element budget.

    Whole patches are batched together while they fit (on an accelerator, a few pieces for the whole
    batch); a patch larger than the budget is cut into slabs of n axial slices, one patch at a time.
    """
    bsz, c, d, h, w = shape
    budget = _CPU_SLAB_ELEMENTS if device.type == "cpu" else _GPU_SLAB_ELEMENTS
    per_patch = c * d * h * w
    if per_patch <= budget:
        k = max(1, budget // max(1, per_patch))
        return [(b0, min(b0 + k, bsz), [(0, d)]) for b0 in range(0, bsz, k)]
    n = max(1, budget // max(1, c * h * w))
    slabs = [(d0, min(n, d - d0)) for d0 in range(0, d, n)]
    return [(i, i + 1, slabs) for i in range(bsz)]


class _Scratch:
    """Views of one scratch buffer shaped for a piece of k patches x n slices (a few shapes per pass)."""

    def __init__(self, x: Tensor, plan: list[tuple[int, int, list[tuple[int, int]]]], channels: int) -> None:
        _, _, _, self.h, self.w = x.shape
        self.channels = channels
        most = max((b1 - b0) * n for b0, b1, slabs in plan for _, n in slabs)
        self.buf = x.new_empty(most * channels * self.h * self.w)
        self.views: dict[tuple[int, int], tuple[Tensor, ...]] = {}

    def get(self, k: int, n: int) -> tuple[Tensor, ...]:
        """(whole (k, parts, C, n, H, W), its (k, parts*C, n*H*W) matrix view, each part (k, C, n, H, W))."""
        if (k, n) not in self.views:
            whole = self.buf[:k * n * self.channels * self.h * self.w].view(k, 3, -1, n, self.h, self.w)
            self.views[(k, n)] = (whole, whole.view(k, self.channels, n * self.h * self.w), *whole.unbind(1))
        return self.views[(k, n)]


class _GateFusion(torch.autograd.Function):
    """y = b + W z with z = [x*g0; x*g1; x*g2] rebuilt piece by piece (see `_plan`), never kept."""

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
        plan = _plan(x.shape, x.device)
        scratch = _Scratch(x, plan, 3 * c)
        bcol = b[:, None]
        for b0, b1, slabs in plan:
            k = b1 - b0
            xb, yb = x[b0:b1], y[b0:b1].view(k, co, d * hw)
            g0b, g1b, g2b = g0[b0:b1].view(k, c, d, 1, 1), g1[b0:b1].view(k, c, 1, h, 1), g2[b0:b1].view(k, c, 1, 1, wd)
            for d0, n in slabs:
                _, zm, z0, z1, z2 = scratch.get(k, n)
                xs = xb.narrow(2, d0, n)
                torch.mul(xs, g0b.narrow(2, d0, n), out=z0)
                torch.mul(xs, g1b, out=z1)
                torch.mul(xs, g2b, out=z2)
                ys = yb.narrow(2, d0 * hw, n * hw)
                if k == 1:  # one patch or a slab of it: a strided (C_out, n*H*W) view of y
                    torch.addmm(bcol, w, zm[0], out=ys[0])
                else:  # whole patches: contiguous (k, C_out, D*H*W)
                    torch.baddbmm(bcol, w.expand(k, co, 3 * c), zm, out=ys)
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
        gg0 = torch.empty_like(g0)
        gb = gy.new_zeros(co)
        gg1, gg2 = torch.zeros_like(g1), torch.zeros_like(g2)
        plan = _plan(x.shape, x.device)
        zs, vs = _Scratch(x, plan, 3 * c), _Scratch(x, plan, 3 * c)
        wt = w.t()
        for b0, b1, slabs in plan:
            k = b1 - b0
            xb, gyb, gxb, gg0b = x[b0:b1], gy[b0:b1].view(k, co, d * hw), gx[b0:b1], gg0[b0:b1]
            gg1b, gg2b = gg1[b0:b1], gg2[b0:b1]
            g0b, g1b, g2b = g0[b0:b1].view(k, c, d, 1, 1), g1[b0:b1].view(k, c, 1, h, 1), g2[b0:b1].view(k, c, 1, 1, wd)
            for d0, n in slabs:
                _, zm, z0, z1, z2 = zs.get(k, n)
                v, vm, v0, v1, v2 = vs.get(k, n)
                xs, g0s = xb.narrow(2, d0, n), g0b.narrow(2, d0, n)
                torch.mul(xs, g0s, out=z0)
                torch.mul(xs, g1b, out=z1)
                torch.mul(xs, g2b, out=z2)
                gys = gyb.narrow(2, d0 * hw, n * hw)
                gb += gys.sum(dim=(0, 2))  # while this piece of dy is in cache
                if k == 1:
                    gw.addmm_(gys[0], zm[0].t())
                    torch.mm(wt, gys[0], out=vm[0])
                else:
                    gw += torch.bmm(gys, zm.transpose(1, 2)).sum(0)
                    torch.bmm(wt.expand(k, 3 * c, co), gys, out=vm)
                # dx = sum_a g_a * (W_a^T dy); dg_a = x * (W_a^T dy) summed over the two other axes
                gxs = gxb.narrow(2, d0, n)
                torch.mul(v0, g0s, out=gxs)
                gxs.addcmul_(v1, g1b)
                gxs.addcmul_(v2, g2b)
                v.mul_(xs.unsqueeze(1))
                torch.sum(v0, dim=(3, 4), out=gg0b.narrow(2, d0, n))
                gg1b += v1.sum(dim=4).sum(dim=2)  # W (contiguous) first, then the piece's slices
                gg2b += v2.sum(dim=(2, 3))
        t0, t1, t2, tw, tb = ctx.dtypes
        return gx, gg0.to(t0), gg1.to(t1), gg2.to(t2), gw.to(tw), gb.to(tb)


class _DepthMeans(torch.autograd.Function):
    """x's profile along depth (B, C, D), and its sums along H and W, in one read of x (two reductions
    of each cached piece).

    Backward returns a broadcast view, not a full-size tensor: autograd adds it in place into the
    gradient the fused gating already wrote for x (no allocation of the map's size, one pass).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ctx.shape = x.shape
        if is_channels_last(x):
            m0, s1, s2 = _depth_means_channels_last(x)
            ctx.mark_non_differentiable(s1, s2)
            return m0, s1, s2
        x = x.contiguous()
        bsz, c, d, h, wd = x.shape
        m0 = x.new_empty(bsz, c, d)
        s1, s2 = x.new_zeros(bsz, c, h), x.new_zeros(bsz, c, wd)
        for b0, b1, slabs in _plan(x.shape, x.device):
            xb, m0b, s1b, s2b = x[b0:b1], m0[b0:b1], s1[b0:b1], s2[b0:b1]
            for d0, n in slabs:
                xs = xb.narrow(2, d0, n)
                rows = xs.sum(dim=4)  # (k, C, n, H): W is contiguous
                torch.sum(rows, dim=3, out=m0b.narrow(2, d0, n))
                s1b += rows.sum(dim=2)
                s2b += xs.sum(dim=(2, 3))
        ctx.mark_non_differentiable(s1, s2)  # their gradient flows through _PlaneMeans
        return m0 / (h * wd), s1, s2

    @staticmethod
    def backward(ctx, g0: Tensor | None, _s1: Tensor | None, _s2: Tensor | None) -> Tensor | None:
        if g0 is None:
            return None
        _, _, _, h, wd = ctx.shape
        return (g0 / (h * wd))[:, :, :, None, None].expand(ctx.shape)


class _PlaneMeans(torch.autograd.Function):
    """x's profiles along H and W from its sums; x is an input to carry their gradient, again as a
    broadcast view."""

    @staticmethod
    def forward(ctx, x: Tensor, s1: Tensor, s2: Tensor) -> tuple[Tensor, Tensor]:
        _, _, d, h, wd = x.shape
        ctx.shape = x.shape
        return s1 / (d * wd), s2 / (d * h)

    @staticmethod
    def backward(ctx, g1: Tensor | None, g2: Tensor | None) -> tuple[Tensor | None, None, None]:
        if g1 is None and g2 is None:
            return None, None, None
        bsz, c, d, h, wd = ctx.shape
        ref = g1 if g1 is not None else g2
        g1 = g1 / (d * wd) if g1 is not None else ref.new_zeros(bsz, c, h)
        g2 = g2 / (d * h) if g2 is not None else ref.new_zeros(bsz, c, wd)
        plane = g1[:, :, :, None] + g2[:, :, None, :]  # (B, C, H, W), small
        return plane[:, :, None].expand(ctx.shape), None, None


def _depth_means_channels_last(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`_DepthMeans.forward` for x stored (B, D, H, W, C): the same piece plan, reductions over the
    permuted view (C contiguous), results returned as (B, C, L) like the default layout's."""
    xp = x.permute(0, 2, 3, 4, 1)
    bsz, d, h, wd, c = xp.shape
    m0 = x.new_empty(bsz, d, c)
    s1, s2 = x.new_zeros(bsz, h, c), x.new_zeros(bsz, wd, c)
    for b0, b1, slabs in _plan(x.shape, x.device):
        xb, m0b, s1b, s2b = xp[b0:b1], m0[b0:b1], s1[b0:b1], s2[b0:b1]
        for d0, n in slabs:
            xs = xb.narrow(1, d0, n)  # (k, n, H, W, C)
            rows = xs.sum(dim=3)  # (k, n, H, C)
            torch.sum(rows, dim=2, out=m0b.narrow(1, d0, n))
            s1b += rows.sum(dim=1)
            s2b += xs.sum(dim=(1, 2))
    return (m0 / (h * wd)).transpose(1, 2), s1.transpose(1, 2), s2.transpose(1, 2)


class _GateFusionChannelsLast(torch.autograd.Function):
    """`_GateFusion` for x stored (B, D, H, W, C): per voxel a row of C channels, so z = [x*g0, x*g1, x*g2]
    is an (N, 3C) matrix built piece by piece and y = z W^T + b lands in a channels-last y directly."""

    @staticmethod
    def forward(ctx, x: Tensor, g0: Tensor, g1: Tensor, g2: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.dtypes = (g0.dtype, g1.dtype, g2.dtype, weight.dtype, bias.dtype)
        dt = x.dtype
        bsz, c, d, h, wd = x.shape
        g0, g1, g2 = (g.to(dt).transpose(1, 2).contiguous() for g in (g0, g1, g2))  # (B, L_a, C)
        w, b = weight.to(dt), bias.to(dt)
        co = w.shape[0]
        y = torch.empty((bsz, co, d, h, wd), dtype=dt, device=x.device, memory_format=_CL)
        xp, yp = x.permute(0, 2, 3, 4, 1), y.permute(0, 2, 3, 4, 1)
        wt = w.t()
        plan = _plan(x.shape, x.device)
        z = _ChannelsLastScratch(x, plan, 3 * c)
        for b0, b1, slabs in plan:
            g0b, g1b, g2b = _gate_views(g0, g1, g2, b0, b1)
            for d0, n in slabs:
                zm, z0, z1, z2 = z.get(b1 - b0, n)
                xs = xp[b0:b1].narrow(1, d0, n)
                torch.mul(xs, g0b.narrow(1, d0, n), out=z0)
                torch.mul(xs, g1b, out=z1)
                torch.mul(xs, g2b, out=z2)
                torch.addmm(b, zm, wt, out=yp[b0:b1].narrow(1, d0, n).view(-1, co))
        ctx.save_for_backward(x, g0, g1, g2, w)
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, g0, g1, g2, w = ctx.saved_tensors
        bsz, c, d, h, wd = x.shape
        co = w.shape[0]
        gyp = gy.to(x.dtype).contiguous(memory_format=_CL).permute(0, 2, 3, 4, 1)
        gx = torch.empty_like(x, memory_format=_CL)
        gxp = gx.permute(0, 2, 3, 4, 1)
        gw, gb = w.new_zeros(co, 3 * c), w.new_zeros(co)
        gg0, gg1, gg2 = torch.empty_like(g0), torch.zeros_like(g1), torch.zeros_like(g2)
        plan = _plan(x.shape, x.device)
        zs, vs = _ChannelsLastScratch(x, plan, 3 * c), _ChannelsLastScratch(x, plan, 3 * c)
        xp = x.permute(0, 2, 3, 4, 1)
        for b0, b1, slabs in plan:
            k = b1 - b0
            g0b, g1b, g2b = _gate_views(g0, g1, g2, b0, b1)
            for d0, n in slabs:
                zm, z0, z1, z2 = zs.get(k, n)
                vm, v0, v1, v2 = vs.get(k, n)
                xs, g0s = xp[b0:b1].narrow(1, d0, n), g0b.narrow(1, d0, n)
                torch.mul(xs, g0s, out=z0)
                torch.mul(xs, g1b, out=z1)
                torch.mul(xs, g2b, out=z2)
                gys = gyp[b0:b1].narrow(1, d0, n).reshape(-1, co)
                gb += gys.sum(dim=0)
                gw.addmm_(gys.t(), zm)
                torch.mm(gys, w, out=vm)  # W_a^T dy for each a, side by side: (N, 3C)
                # dx = sum_a g_a * (W_a^T dy); dg_a = x * (W_a^T dy) summed over the two other axes
                gxs = gxp[b0:b1].narrow(1, d0, n)
                torch.mul(v0, g0s, out=gxs)
                gxs.addcmul_(v1, g1b)
                gxs.addcmul_(v2, g2b)
                vm.view(k, n, h, wd, 3, c).mul_(xs.unsqueeze(4))
                torch.sum(v0, dim=(2, 3), out=gg0[b0:b1].narrow(1, d0, n))
                gg1[b0:b1] += v1.sum(dim=3).sum(dim=1)
                gg2[b0:b1] += v2.sum(dim=(1, 2))
        t0, t1, t2, tw, tb = ctx.dtypes
        return (gx, gg0.transpose(1, 2).to(t0), gg1.transpose(1, 2).to(t1), gg2.transpose(1, 2).to(t2),
                gw.to(tw), gb.to(tb))


def _gate_views(g0: Tensor, g1: Tensor, g2: Tensor, b0: int, b1: int) -> tuple[Tensor, Tensor, Tensor]:
    """Gates stored (B, L_a, C) as broadcastable (k, D, 1, 1, C), (k, 1, H, 1, C), (k, 1, 1, W, C)."""
    return g0[b0:b1, :, None, None, :], g1[b0:b1, None, :, None, :], g2[b0:b1, None, None, :, :]


class _ChannelsLastScratch:
    """One scratch buffer as an (N, 3C) matrix for a piece of k patches x n slices, with its three
    (k, n, H, W, C) parts (a few shapes per pass, views cached)."""

    def __init__(self, x: Tensor, plan: list[tuple[int, int, list[tuple[int, int]]]], channels: int) -> None:
        _, _, _, self.h, self.w = x.shape
        self.channels = channels
        most = max((b1 - b0) * n for b0, b1, slabs in plan for _, n in slabs)
        self.buf = x.new_empty(most * self.h * self.w * channels)
        self.views: dict[tuple[int, int], tuple[Tensor, ...]] = {}

    def get(self, k: int, n: int) -> tuple[Tensor, ...]:
        if (k, n) not in self.views:
            rows = self.buf[:k * n * self.h * self.w * self.channels].view(-1, self.channels)
            parts = rows.view(k, n, self.h, self.w, 3, self.channels // 3).unbind(4)
            self.views[(k, n)] = (rows, *parts)
        return self.views[(k, n)]
