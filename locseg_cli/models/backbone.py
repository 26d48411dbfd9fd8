"""MONAI BasicUNet, with hook points and optional location injection at every stage.

Built from MONAI's own blocks with BasicUNet's module names, so with no injection its weights are
interchangeable with `monai.networks.nets.BasicUNet` (a test checks they compute the same thing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets.basic_unet import TwoConv, UpCat
from torch import Tensor, nn

from .layout import is_channels_last, tracing

# The places a block can be inserted: the raw input, after the first conv block (the paper's
# choice), after the last decoder block, on the logits.
HOOK_POINTS = ("input", "first_block", "last_decoder", "logits")

Hook = Callable[[str, Tensor], Tensor]

_ACT = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})


def norm_spec(norm: str) -> tuple:
    """MONAI norm spec of a backbone norm name (instance norm with affine, as BasicUNet's default)."""
    if norm == "instance":
        return ("instance", {"affine": True})
    if norm == "batch":
        return ("batch", {})
    raise ValueError(f"unknown backbone norm {norm!r}")


class _MaxPool2(torch.autograd.Function):
    """2x max-pooling that keeps only the argmax indices for backward, not its input.

    Same values and gradients as `F.max_pool3d(x, 2)`; not holding the input means a block inserted
    before the encoder (LocBAM) adds no full-resolution tensor to what backward keeps.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y, idx = F.max_pool3d(x, kernel_size=2, return_indices=True)
        ctx.save_for_backward(idx)
        ctx.size = x.shape[2:]
        return y

    @staticmethod
    def backward(ctx, gy: Tensor) -> Tensor:
        (idx,) = ctx.saved_tensors
        return F.max_unpool3d(gy.contiguous(), idx, kernel_size=2, output_size=ctx.size)


class MaxPool2(nn.Module):
    """Module form of `_MaxPool2` (BasicUNet's `max_pooling`); while `tracing()` (export) the plain op,
    since a tracer cannot record a custom autograd function and an exported graph needs no backward."""

    def forward(self, x: Tensor) -> Tensor:
        if tracing():
            return F.max_pool3d(x, kernel_size=2)
        return _MaxPool2.apply(x)


class InstanceNormAnyLayout(nn.InstanceNorm3d):
    """InstanceNorm3d that keeps a channels-last input channels-last.

    torch's instance norm returns the default layout, so around channels-last convolutions every norm
    costs two layout copies (forward and backward). A GroupNorm with one channel per group is the same
    maths (per sample and channel: mean, variance, affine) and keeps the layout; it serves channels-last
    inputs, the default layout keeps `instance_norm` itself.
    """

    def forward(self, x: Tensor) -> Tensor:
        if is_channels_last(x):
            # in float32 under bf16 autocast: torch's channels-last bf16 group-norm backward is ~10x slower
            return F.group_norm(x.float(), self.num_features, self.weight, self.bias, self.eps)
        return super().forward(x)


class Conv3dChannelsLast(nn.Conv3d):
    """Conv3d that runs a channels-last CPU input through oneDNN whatever the batch size.

    torch picks its slow reference kernel (which also converts to the default layout) for small maps at
    batch 1 and for single-threaded 1x1x1 kernels: at 64³ x 1 that is every level below the first. The
    oneDNN op has its own autograd formula; same maths, same parameters. Other inputs take `nn.Conv3d`'s
    own path.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type == "cpu" and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and is_channels_last(x) and torch.backends.mkldnn.is_available()):
            weight, bias = self.weight, self.bias
            if torch.is_autocast_enabled("cpu"):  # a direct op call is not autocast: cast as autocast would
                dtype = torch.get_autocast_dtype("cpu")
                x, weight = x.to(dtype), weight.to(dtype)
                bias = None if bias is None else bias.to(dtype)
            if x.dtype == weight.dtype and x.dtype in (torch.float32, torch.bfloat16):
                return torch.mkldnn_convolution(x, weight, bias, self.padding, self.stride, self.dilation,
                                                self.groups)
        return super().forward(x)


def _channels_last_modules(module: nn.Module) -> None:
    """Swap the classes of the layers with a faster channels-last form (same parameters and state-dict
    keys): affine, statistics-free InstanceNorm3d -> `InstanceNormAnyLayout`, Conv3d -> `Conv3dChannelsLast`."""
    for m in module.modules():
        if type(m) is nn.InstanceNorm3d and m.affine and not m.track_running_stats:
            m.__class__ = InstanceNormAnyLayout
        elif type(m) is nn.Conv3d:
            m.__class__ = Conv3dChannelsLast


class PointwiseConv3d(nn.Conv3d):
    """The 1x1x1 output convolution, as a matrix product over channels on a channels-last input.

    On CPU a 1x1x1 Conv3d falls back to a slow path that converts channels-last to the default layout;
    `F.linear` over the channels-last view is the same sum and keeps the layout. Same parameters and
    state-dict keys as `nn.Conv3d(cin, cout, 1)`.
    """

    def forward(self, x: Tensor) -> Tensor:
        if is_channels_last(x):
            w = self.weight.view(self.out_channels, self.in_channels)
            return F.linear(x.permute(0, 2, 3, 4, 1), w, self.bias).permute(0, 4, 1, 2, 3)
        return super().forward(x)


class _UpCat(UpCat):
    """MONAI's UpCat, padding the upsampled map only when its size differs from the skip's (odd edge
    lengths). MONAI pads always, with zero widths when sizes agree: a copy that also drops the
    channels-last layout."""

    def forward(self, x: Tensor, x_e: Tensor | None) -> Tensor:
        x_0 = self.upsample(x)
        if x_e is None:
            return self.convs(x_0)
        if x_e.shape[2:] != x_0.shape[2:]:
            sp = []
            for a, b in zip(reversed(x_e.shape[2:]), reversed(x_0.shape[2:])):
                sp += [0, int(a != b)]
            x_0 = F.pad(x_0, sp, "replicate")
        return self.convs(torch.cat([x_e, x_0], dim=1))


class _Down(nn.Module):
    """BasicUNet's `Down` (max-pool, two convs) that can also take location channels after pooling."""

    def __init__(self, in_chns: int, out_chns: int, extra: int, norm: tuple, dropout: float) -> None:
        super().__init__()
        self.max_pooling = MaxPool2()
        self.convs = TwoConv(3, in_chns + extra, out_chns, _ACT, norm, True, dropout)

    def forward(self, x: Tensor, extra: Tensor | None = None) -> Tensor:
        x = self.max_pooling(x)
        if extra is not None:
            x = torch.cat([x, extra], dim=1)
        return self.convs(x)


class UNetBackbone(nn.Module):
    """BasicUNet(spatial_dims=3): LeakyReLU 0.1, max-pool down, deconv up, features f0..f5.

    `inject_channels` > 0 adds that many channels to the input of every encoder and decoder block,
    filled by `forward(..., levels=[...])` (the location at each resolution; CoordConv ref. 9).
    """

    def __init__(self, in_channels: int, out_channels: int, features: Sequence[int], norm: str = "instance",
                 dropout: float = 0.0, inject_channels: int = 0) -> None:
        super().__init__()
        f = [int(v) for v in features]
        if len(f) != 6:
            raise ValueError(f"features needs six widths, got {features}")
        nrm = norm_spec(norm)
        e = int(inject_channels)
        self.inject_channels = e
        self.conv_0 = TwoConv(3, in_channels, f[0], _ACT, nrm, True, dropout)
        self.down_1 = _Down(f[0], f[1], e, nrm, dropout)
        self.down_2 = _Down(f[1], f[2], e, nrm, dropout)
        self.down_3 = _Down(f[2], f[3], e, nrm, dropout)
        self.down_4 = _Down(f[3], f[4], e, nrm, dropout)
        self.upcat_4 = _UpCat(3, f[4], f[3] + e, f[3], _ACT, nrm, True, dropout, "deconv")
        self.upcat_3 = _UpCat(3, f[3], f[2] + e, f[2], _ACT, nrm, True, dropout, "deconv")
        self.upcat_2 = _UpCat(3, f[2], f[1] + e, f[1], _ACT, nrm, True, dropout, "deconv")
        self.upcat_1 = _UpCat(3, f[1], f[0] + e, f[5], _ACT, nrm, True, dropout, "deconv", halves=False)
        self.final_conv = PointwiseConv3d(f[5], out_channels, kernel_size=1)
        _channels_last_modules(self)

    def forward(self, x: Tensor, levels: Sequence[Tensor] | None = None, hook: Hook | None = None) -> Tensor:
        """`levels[k]`: channels injected at resolution level k (0 = full); `hook(point, t)` may replace t."""
        h = hook or _identity_hook
        if self.inject_channels and (levels is None or len(levels) < 5):
            raise ValueError("this backbone injects channels at every level: pass five `levels`")
        lv: Sequence[Tensor | None] = levels if self.inject_channels else [None] * 5
        x = h("input", x)
        x0 = h("first_block", self.conv_0(x))
        x1 = self.down_1(x0, lv[1])
        x2 = self.down_2(x1, lv[2])
        x3 = self.down_3(x2, lv[3])
        x4 = self.down_4(x3, lv[4])
        u4 = self.upcat_4(x4, _cat(x3, lv[3]))
        u3 = self.upcat_3(u4, _cat(x2, lv[2]))
        u2 = self.upcat_2(u3, _cat(x1, lv[1]))
        u1 = h("last_decoder", self.upcat_1(u2, _cat(x0, lv[0])))
        return h("logits", self.final_conv(u1))


def _identity_hook(point: str, t: Tensor) -> Tensor:
    return t


def _cat(skip: Tensor, extra: Tensor | None) -> Tensor:
    return skip if extra is None else torch.cat([skip, extra], dim=1)


def location_pyramid(location: Tensor, levels: int = 5) -> list[Tensor]:
    """The location channels at each resolution of the U-Net (2x average pooling, like the max-pool grid).

    Average pooling of a linear coordinate gives the coordinate of the pooled cell's centre.
    """
    out = [location]
    for _ in range(levels - 1):
        out.append(F.avg_pool3d(out[-1], kernel_size=2))
    return out
