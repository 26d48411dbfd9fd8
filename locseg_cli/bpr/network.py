"""Slice regressors: one axial slice in, one raw body-part score out.

`compact` (default) is small enough to train on a few CPU cores in minutes; `vgg` follows bpreg's
VGG16 feature layout (13 convolutions, 5 poolings, a 1x1 convolution, global mean, a linear head)
with a width knob, for a GPU. Both accept any input size (global pooling).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class SliceRegressor(nn.Module):
    """Feature extractor + global mean + linear head; `forward` returns (N,) raw scores."""

    def __init__(self, features: nn.Sequential, channels: int, dropout: float = 0.1):
        super().__init__()
        self.features = features
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean(dim=(2, 3))
        return self.head(f)[:, 0]


def build_compact(width: int = 16) -> SliceRegressor:
    """Strided stem then 3 blocks (two 3x3 convs, 2x max-pool), channels w, 2w, 4w, 8w.

    At 128x128 input this costs about 50 MMAC per slice for width 16.
    """
    w = int(width)
    layers: list[nn.Module] = [*_conv(1, w, stride=2), *_conv(w, w), nn.MaxPool2d(2)]
    cin = w
    for cout in (2 * w, 4 * w, 8 * w):
        layers += [*_conv(cin, cout), *_conv(cout, cout)]
        if cout != 8 * w:
            layers.append(nn.MaxPool2d(2))
        cin = cout
    return SliceRegressor(nn.Sequential(*layers), cin)


def build_vgg(width: int = 64) -> SliceRegressor:
    """VGG16's configuration (64-64-M-128-128-M-256x3-M-512x3-M-512x3-M, scaled by width/64), then
    a 1x1 conv to 512*width/64 channels as in bpreg."""
    scale = int(width) / 64
    cfg: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    cin = 1
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            cout = max(1, int(round(int(v) * scale)))
            layers += _conv(cin, cout)
            cin = cout
    top = max(1, int(round(512 * scale)))
    layers += [nn.Conv2d(cin, top, 1), nn.ReLU(inplace=True)]
    return SliceRegressor(nn.Sequential(*layers), top)


ARCHITECTURES: dict[str, Callable[[int], SliceRegressor]] = {"compact": build_compact, "vgg": build_vgg}


def build_regressor(arch: str, width: int) -> SliceRegressor:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown regressor {arch!r} (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch](width)
