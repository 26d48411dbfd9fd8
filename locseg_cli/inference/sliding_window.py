"""Sliding-window prediction where every window gets its own location channels.

The volume is first padded up to the window size with the location vectors extended linearly
(so windows past the border keep a meaningful location, not zeros), then MONAI's
`sliding_window_inference` tiles it with Gaussian weighting and windows the location tensor exactly
like the image (`condition=`). Stitching happens on `out_device` (CPU by default) so large volumes
do not exhaust accelerator memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..location import location_channels


def predict_volume(model: torch.nn.Module, image: np.ndarray, location: Sequence[np.ndarray],
                   roi_size: Sequence[int], overlap: float = 0.5, sw_batch_size: int = 4,
                   device: torch.device | str = "cpu", out_device: torch.device | str = "cpu",
                   pad_value: float = 0.0, amp: bool = False, softmax: bool = True) -> torch.Tensor:
    """Class probabilities (C, z, y, x) of a preprocessed volume (on `out_device`)."""
    from monai.inferers import sliding_window_inference

    shape = image.shape
    roi = [int(r) for r in roi_size]
    pad_before = [max(0, (r - n) // 2 + (r - n) % 2) if r > n else 0 for r, n in zip(roi, shape)]
    padded_shape = [max(r, n) for r, n in zip(roi, shape)]
    start = [-p for p in pad_before]
    img = np.full(padded_shape, pad_value, dtype=np.float32)
    img[tuple(slice(p, p + n) for p, n in zip(pad_before, shape))] = image
    loc = location_channels(location, start, padded_shape)
    x = torch.from_numpy(img)[None, None]
    c = torch.from_numpy(loc)[None]
    device = torch.device(device)

    def predictor(window: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            out = model(window, condition)
        return out.float()

    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits = sliding_window_inference(x, roi, sw_batch_size, predictor, overlap=overlap, mode="gaussian",
                                          sigma_scale=0.125, sw_device=device, device=torch.device(out_device),
                                          condition=c)
    model.train(was_training)
    logits = logits[0][(slice(None),) + tuple(slice(p, p + n) for p, n in zip(pad_before, shape))]
    return torch.softmax(logits, 0) if softmax else logits
