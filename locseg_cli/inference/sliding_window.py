"""Sliding-window prediction where every window gets its own location channels.

MONAI's `sliding_window_inference` tiles the image exactly as its plain call does (its own padding
when the volume is smaller than the window, Gaussian weighting, stitching on `out_device`, CPU by
default, so large volumes do not exhaust accelerator memory). With `with_coord=True` it hands the
predictor each window's slices, and the predictor cuts the window's location channels from the 1D
location vectors (extended linearly over the padding): no full-volume location tensor is built or
windowed, so the only work beyond MONAI's plain call is a few small copies per window batch.
The result is the blended logits, like MONAI's; the softmax runs only when probabilities are asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..location import slice_location
from ..models.layout import to_layout
from ..runtime.device import autocast_dtype

SIGMA_SCALE = 0.125  # Gaussian blending sigma as a fraction of the window (nnU-Net, MONAI's default)


def predict_volume(model: torch.nn.Module, image: np.ndarray, location: Sequence[np.ndarray],
                   roi_size: Sequence[int], overlap: float = 0.5, sw_batch_size: int = 4,
                   device: torch.device | str = "cpu", out_device: torch.device | str = "cpu",
                   pad_value: float = 0.0, amp: bool = False, softmax: bool = False,
                   layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Gaussian-blended logits (C, z, y, x) of a preprocessed volume on `out_device` (`softmax`: probabilities).

    `location` holds the volume's three per-axis location vectors (`locseg_cli.location`); voxels
    MONAI pads (volumes smaller than the window, value `pad_value`) get them extended linearly.
    `amp`: autocast where the device computes a lower precision natively (`runtime.device.autocast_dtype`);
    `layout`: the memory layout the windows are handed to the model in (the model's own).
    """
    from monai.inferers import sliding_window_inference

    roi = tuple(int(r) for r in roi_size)
    if len(roi) != 3 or image.ndim != 3:
        raise ValueError(f"need a 3D volume and a 3D window, got {image.shape} and {roi}")
    device = torch.device(device)
    # MONAI pads an axis shorter than the window by (window - length) // 2 voxels before it
    pad_before = [max(r - n, 0) // 2 for r, n in zip(roi, image.shape)]
    vectors = [torch.from_numpy(slice_location(v, -p, max(r, n))).to(device)
               for v, p, r, n in zip(location, pad_before, roi, image.shape)]
    if not image.flags.writeable:  # torch would warn on a read-only (memory-mapped) array
        image = image.copy()
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    dtype = autocast_dtype(amp, "bf16", device)

    def predictor(window: torch.Tensor, slices: list[list[slice]]) -> torch.Tensor:
        loc = to_layout(window_location(vectors, slices, window.shape[2:]), layout)
        window = to_layout(window, layout)
        if dtype is None:
            return model(window, loc)
        with torch.autocast(device.type, dtype=dtype):
            return model(window, loc).float()

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = sliding_window_inference(x, roi, sw_batch_size, predictor, overlap=overlap, mode="gaussian",
                                           sigma_scale=SIGMA_SCALE, padding_mode="constant", cval=pad_value,
                                           sw_device=device, device=torch.device(out_device), with_coord=True)[0]
            return softmax_(out) if softmax else out
    finally:
        model.train(was_training)


def window_location(vectors: Sequence[torch.Tensor], slices: Sequence[Sequence[slice]],
                    size: Sequence[int]) -> torch.Tensor:
    """(B, 3, *size) location channels of B windows given by MONAI's slices (batch, channel, z, y, x).

    Channel a of window i is `vectors[a][slice_a]` broadcast along the other two axes, i.e.
    `locseg_cli.location.location_channels` of that window, written with one copy per axis.
    """
    n = len(slices)
    out = vectors[0].new_empty((n, 3, *size))
    for a in range(3):
        segments = torch.stack([vectors[a][s[a + 2]] for s in slices])  # (B, size[a])
        shape = [n, 1, 1, 1]
        shape[a + 1] = int(size[a])
        out[:, a] = segments.view(shape)
    return out


def softmax_(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the class axis 0, in place (a full-volume copy would be as large as the logits).

    In inference mode, so it also applies to the inference tensors `predict_volume` returns.
    """
    with torch.inference_mode():
        logits -= logits.amax(0, keepdim=True)
        logits.exp_()
        logits /= logits.sum(0, keepdim=True)
    return logits
