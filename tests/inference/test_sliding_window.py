"""The project's sliding window: MONAI's plain call plus each window's own location."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

from locseg_cli.inference import predict_volume
from locseg_cli.inference.sliding_window import SIGMA_SCALE, softmax_
from locseg_cli.location import location_vectors, slice_location, volume_location_channels
from locseg_cli.models import ModelConfig, build_model
from locseg_cli.models.base import LocationAwareModel


class LocationEcho(LocationAwareModel):
    """Outputs its location channels: the stitched map is the location each voxel got in its windows."""

    uses_location = True

    def segment(self, image: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        return location + 0 * image


@pytest.mark.parametrize("shape", [(40, 34, 44), (19, 48, 27)])  # larger than the window; shorter on two axes
def test_baseline_logits_equal_monai_plain_call(shape):
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="baseline", out_channels=3, features=(4, 4, 8, 8, 16, 4))).eval()
    rng = np.random.default_rng(1)
    image = rng.normal(size=shape).astype(np.float32)
    roi, pad = (32, 32, 32), -1.5
    ours = predict_volume(model, image, location_vectors(shape), roi, overlap=0.5, sw_batch_size=3, pad_value=pad)
    with torch.no_grad():
        plain = sliding_window_inference(torch.from_numpy(image)[None, None], roi, 3, model.unet, overlap=0.5,
                                         mode="gaussian", sigma_scale=SIGMA_SCALE, cval=pad)[0]
    assert ours.shape == (3, *shape)
    assert torch.allclose(ours, plain, atol=1e-5, rtol=1e-5)
    assert torch.equal(ours.argmax(0), plain.argmax(0))
    probs = predict_volume(model, image, location_vectors(shape), roi, overlap=0.5, sw_batch_size=3, pad_value=pad,
                           softmax=True)
    assert torch.allclose(probs, torch.softmax(plain, 0), atol=1e-6)


@pytest.mark.parametrize("shape,overlap", [((30, 21, 26), 0.5), ((30, 21, 26), 0.25), ((7, 25, 10), 0.5)])
def test_each_window_gets_its_own_location(shape, overlap):
    rng = np.random.default_rng(2)
    # not linspace: a distinct, non-linear value per slice, so a window shifted by one voxel would show
    vectors = [np.sort(rng.uniform(-1, 1, n)).astype(np.float32) for n in shape]
    image = np.zeros(shape, np.float32)
    roi = (16, 12, 12)
    echo = predict_volume(LocationEcho(), image, vectors, roi, overlap=overlap, sw_batch_size=2)
    # every window that covers a voxel saw that voxel's own location, so the blend of them is exactly it
    assert torch.allclose(echo, torch.from_numpy(volume_location_channels(vectors)), atol=1e-6)


def test_padded_windows_get_the_location_extended_linearly():
    seen: list[torch.Tensor] = []

    class Recorder(LocationEcho):
        def segment(self, image, location):
            seen.append(location.clone())
            return super().segment(image, location)

    vectors = location_vectors((5, 12, 12))
    predict_volume(Recorder(), np.zeros((5, 12, 12), np.float32), vectors, (8, 12, 12), sw_batch_size=1)
    assert len(seen) == 1
    # 3 voxels of padding, 1 before and 2 after (MONAI's split): the axial vector continues both ways
    expected = torch.from_numpy(slice_location(vectors[0], -1, 8))
    assert torch.allclose(seen[0][0, 0, :, 0, 0], expected)
    assert expected[0] < vectors[0][0] and expected[-1] > vectors[0][-1]


def test_softmax_in_place_matches_torch():
    logits = torch.randn(4, 5, 6, 7) * 10
    expected = torch.softmax(logits, 0)
    out = softmax_(logits.clone())
    assert torch.allclose(out, expected, atol=1e-7)


def test_mirroring_averages_the_logits_of_each_mirrored_prediction():
    from locseg_cli.config import resolve_config
    from locseg_cli.inference import InferConfig, RunPredictor

    class Skewed(LocationEcho):  # neither mirror-symmetric in the image nor in the location
        def segment(self, image, location):
            return torch.cat([image.cumsum(4), location[:, :2] ** 3], 1)

    shape, roi = (24, 20, 40), (16, 16, 32)
    rng = np.random.default_rng(3)
    image = rng.normal(size=shape).astype(np.float32)
    vectors = location_vectors(shape)
    cfg = resolve_config(InferConfig, None, {"mirror_axes": "0,2", "overlap": 0.5})
    predictor = RunPredictor(None, None, ModelConfig(), (16, 16, 32), None, Skewed(), torch.device("cpu"), cfg)
    expected = torch.zeros(3, *shape)
    for axes in [(), (0,), (2,), (0, 2)]:
        img = np.flip(image, axes).copy()
        loc = [v[::-1].copy() if a in axes else v for a, v in enumerate(vectors)]
        out = predict_volume(Skewed(), img, loc, roi, overlap=0.5, sw_batch_size=4)
        expected += out.flip([a + 1 for a in axes]) if axes else out
    assert torch.allclose(predictor.logits(image, vectors, 0.0), expected / 4, atol=1e-5)
    assert torch.allclose(predictor.probabilities(image, vectors, 0.0), torch.softmax(expected / 4, 0), atol=1e-6)


@pytest.mark.parametrize("name", ["baseline", "coordconv", "locbam"])
def test_channels_last_and_cpu_bf16_windows_follow_the_default_float32_prediction(name, monkeypatch):
    # `infer` on CPU runs the windows channels-last and, on a CPU with native bf16, autocast: the logits
    # follow the plain float32 prediction (exactly up to float rounding in float32, within bf16's in bf16),
    # and every window reaches the model in the layout asked for.
    import locseg_cli.runtime.device as device_mod

    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, out_channels=3, features=(4, 4, 8, 8, 16, 4),
                                    locbam_reduction=1)).eval()
    rng = np.random.default_rng(3)
    shape, roi = (40, 34, 44), (32, 32, 32)
    image = rng.normal(size=shape).astype(np.float32)
    args = (image, location_vectors(shape), roi)
    plain = predict_volume(model, *args, overlap=0.5, sw_batch_size=3)
    seen = []
    cl = torch.channels_last_3d
    model.register_forward_pre_hook(lambda m, inputs: seen.append(tuple(t.is_contiguous(memory_format=cl)
                                                                        for t in inputs)))
    model.to(memory_format=cl)
    fast = predict_volume(model, *args, overlap=0.5, sw_batch_size=3, layout=cl)
    assert seen and all(s == (True, True) for s in seen)
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-4)
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    bf16 = predict_volume(model, *args, overlap=0.5, sw_batch_size=3, layout=cl, amp=True)
    assert bf16.dtype == torch.float32
    assert float((bf16 - plain).norm() / plain.norm()) < 3e-2
    assert float((bf16.argmax(0) == plain.argmax(0)).float().mean()) > 0.95
