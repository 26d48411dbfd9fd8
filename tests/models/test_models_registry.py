"""Every registered model: shapes, gradients, determinism, state dicts, location (in)sensitivity."""

from __future__ import annotations

import io

import pytest
import torch
from monai.networks.nets import BasicUNet

from locseg_cli.errors import LocsegError
from locseg_cli.location import location_channels, location_vectors
from locseg_cli.models import (
    PAPER_FEATURES,
    LocationAwareModel,
    ModelConfig,
    build_model,
    convert_sync_batchnorm,
    count_parameters,
    model_names,
)

NARROW = (4, 4, 8, 8, 16, 4)

torch.set_num_threads(1)


def _inputs(size: int, batch: int = 2, seed: int = 0, start: tuple[int, int, int] = (3, 5, 7)):
    """An image and its location channels cut, as the sampler does, from a 2x-larger volume."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 1, size, size, size, generator=g)
    vecs = location_vectors((2 * size, 2 * size, 2 * size))
    loc = torch.from_numpy(location_channels(vecs, start, (size, size, size)))
    return image, loc.unsqueeze(0).repeat(batch, 1, 1, 1, 1)


def _build(name: str, seed: int = 0, **kw) -> LocationAwareModel:
    torch.manual_seed(seed)
    return build_model(ModelConfig(model=name, features=NARROW, out_channels=3, **kw))


def test_registry_has_the_papers_models():
    assert {"baseline", "coordconv", "locbam"} <= set(model_names())
    assert model_names()[0] == "baseline"


def test_unknown_model_is_a_user_error():
    with pytest.raises(LocsegError, match=r"unknown model 'unet9' \(known: baseline, coordconv, locbam"):
        build_model(ModelConfig(model="unet9"))


@pytest.mark.parametrize("bad", [dict(locbam_kernel=2), dict(locbam_layers=4), dict(features=(4, 4, 8)),
                                 dict(location_noise=-1.0), dict(locbam_dropout=1.0)])
def test_bad_options_are_user_errors(bad):
    with pytest.raises(LocsegError):
        build_model(ModelConfig(model="locbam", **bad))


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("size", [32, 64])
def test_forward_backward_shape(name, size):
    model = _build(name).train()
    image, loc = _inputs(size, batch=2 if size == 32 else 1)
    out = model(image, loc)
    assert out.shape == (image.shape[0], 3, size, size, size)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("name", model_names())
def test_same_seed_same_model_same_output(name):
    image, loc = _inputs(32)
    a, b, c = _build(name, seed=7).eval(), _build(name, seed=7).eval(), _build(name, seed=8).eval()
    with torch.no_grad():
        ya, yb, yc = a(image, loc), b(image, loc), c(image, loc)
    assert torch.equal(ya, yb)
    assert not torch.allclose(ya, yc)


@pytest.mark.parametrize("name", model_names())
def test_state_dict_round_trip(name):
    image, loc = _inputs(32)
    src = _build(name, seed=1)
    src.train()
    src(image, loc)  # moves BatchNorm running statistics away from their initial values
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    dst = _build(name, seed=2)
    dst.load_state_dict(torch.load(buf, weights_only=True))
    src.eval()
    dst.eval()
    with torch.no_grad():
        assert torch.equal(src(image, loc), dst(image, loc))


@pytest.mark.parametrize("name", model_names())
def test_output_follows_location_iff_model_uses_it(name):
    # Training mode: at initialisation, eval-mode BatchNorm (running mean 0) may leave a 1-channel
    # gate bottleneck entirely below ReLU's threshold; the same RNG seed gives both calls equal dropout.
    model = _build(name).train()
    image, loc = _inputs(32)
    _, moved = _inputs(32, start=(20, 5, 7))  # same image, patch taken from another position
    outs = []
    with torch.no_grad():
        for location in (loc, moved):
            torch.manual_seed(3)
            outs.append(model(image, location))
    assert torch.equal(*outs) == (not model.uses_location)


def test_locbam_without_position_injection_ignores_location():
    model = _build("locbam", locbam_inject="none").eval()
    image, loc = _inputs(32)
    with torch.no_grad():
        assert torch.equal(model(image, loc), model(image, loc + 0.3))


def test_baseline_is_monai_basicunet():
    torch.manual_seed(0)
    ref = BasicUNet(spatial_dims=3, in_channels=1, out_channels=3, features=NARROW).eval()
    model = _build("baseline").eval()
    model.unet.load_state_dict(ref.state_dict())
    image, loc = _inputs(32)
    with torch.no_grad():
        torch.testing.assert_close(model(image, loc), ref(image), rtol=0, atol=0)


def test_coordconv_gets_location_as_input_channels():
    model = _build("coordconv")
    assert model.unet.conv_0.conv_0.conv.in_channels == 4
    torch.manual_seed(0)
    ref = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3, features=NARROW).eval()
    model.unet.load_state_dict(ref.state_dict())
    model.eval()
    image, loc = _inputs(32)
    with torch.no_grad():
        torch.testing.assert_close(model(image, loc), ref(torch.cat([image, loc], 1)), rtol=0, atol=0)


def test_coordconv_all_injects_at_every_block():
    model = _build("coordconv", coordconv_inject="all").eval()
    assert model.unet.down_4.convs.conv_0.conv.in_channels == NARROW[3] + 3
    image, loc = _inputs(32)
    with torch.no_grad():
        base = model(image, loc)
        # zeroing the input-level location weights leaves the deeper injections to carry it
        model.unet.conv_0.conv_0.conv.weight[:, 1:] = 0
        assert not torch.equal(model(image, loc), model(image, loc + 0.2))
    assert base.shape == (2, 3, 32, 32, 32)


@pytest.mark.parametrize("placement", ["input", "first_block", "last_decoder", "logits"])
def test_locbam_placements(placement):
    model = _build("locbam", locbam_placement=placement).eval()
    channels = {"input": 1, "first_block": NARROW[0], "last_decoder": NARROW[5], "logits": 3}[placement]
    assert model.locbam.channels == channels
    image, loc = _inputs(32, batch=1)
    with torch.no_grad():
        assert not torch.equal(model(image, loc), model(image, loc + 0.25))


def test_location_noise_only_in_training_and_only_when_asked():
    image, loc = _inputs(32, batch=1)
    noisy = _build("coordconv", location_noise=0.1)
    noisy.train()
    assert not torch.equal(noisy(image, loc), noisy(image, loc))
    noisy.eval()
    with torch.no_grad():
        assert torch.equal(noisy(image, loc), noisy(image, loc))
    quiet = _build("coordconv").train()
    assert torch.equal(quiet(image, loc), quiet(image, loc))
    seen = []
    noisy.segment = lambda im, lc: seen.append(lc) or im  # type: ignore[method-assign]
    noisy.train()
    noisy(image, loc)
    shift = seen[0] - loc
    assert torch.allclose(shift, shift[:, :, :1, :1, :1].expand_as(shift))  # one offset per patch and axis


def test_locbam_overhead_at_paper_widths_is_under_one_percent():
    base = count_parameters(build_model(ModelConfig(model="baseline", features=PAPER_FEATURES)))
    loc = count_parameters(build_model(ModelConfig(model="locbam", features=PAPER_FEATURES)))
    assert 0 < (loc - base) / base <= 0.01


def test_misaligned_location_is_rejected():
    model = _build("baseline")
    image, loc = _inputs(32)
    with pytest.raises(ValueError, match="not aligned"):
        model(image, loc[:, :, :16])


def test_no_sync_batchnorm_outside_ddp():
    model = _build("locbam")
    assert convert_sync_batchnorm(model) is model
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())


@pytest.mark.parametrize("shape", [(2, 3, 8, 6, 4), (1, 2, 7, 5, 9)])
def test_encoder_max_pool_matches_torch(shape):
    from locseg_cli.models.backbone import _MaxPool2

    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_MaxPool2.apply, (x,))
    torch.testing.assert_close(_MaxPool2.apply(x), torch.nn.functional.max_pool3d(x, 2), rtol=0, atol=0)


def _saved_bytes(model: torch.nn.Module, image: torch.Tensor, loc: torch.Tensor) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(image, loc)
    return sum(seen.values())


def test_fused_locbam_keeps_at_most_one_percent_more_for_backward_than_baseline():
    image, loc = _inputs(32, batch=1)
    kept = {fused: _saved_bytes(_build("locbam", locbam_fused=fused).train(), image, loc) for fused in (True, False)}
    base = _saved_bytes(_build("baseline").train(), image, loc)
    assert kept[True] <= 1.01 * base
    assert kept[False] >= 1.10 * base  # the straightforward form keeps the 3C concat


@pytest.mark.parametrize("name", model_names())
def test_channels_last_computes_what_the_default_layout_computes(name):
    # `locseg train` runs channels-last on CPU: every model must give the same logits and gradients there,
    # and keep the layout through to the logits (a layout copy on the way costs time, not correctness).
    # Gradients are compared in norm, within 1-2 %: float rounding may flip a max-pool's choice between two
    # nearly equal voxels, which moves those voxels' gradients (a wrong layout path errs by far more).
    from locseg_cli.models.layout import to_layout

    cl = torch.channels_last_3d
    image, loc = _inputs(32)
    weights = torch.randn(2, 3, 32, 32, 32)
    results = []
    for fmt in (torch.contiguous_format, cl):
        model = _build(name).train().to(memory_format=fmt)
        x = to_layout(image.clone(), fmt).requires_grad_(True)
        y = model(x, to_layout(loc, fmt))
        (y * weights).sum().backward()
        results.append((y, x.grad, {k: p.grad for k, p in model.named_parameters()}))
    (y0, gx0, gp0), (y1, gx1, gp1) = results
    assert y1.is_contiguous(memory_format=cl), y1.stride()
    torch.testing.assert_close(y1, y0, rtol=1e-4, atol=1e-4)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-12))

    assert rel(gx1, gx0) < 1e-2
    scale = max(float(g.norm()) for g in gp0.values())
    for k in gp0:  # each tensor within 2 % of its norm, plus a floor for those whose true gradient is ~0
        assert float((gp1[k] - gp0[k]).norm()) <= 2e-2 * float(gp0[k].norm()) + 1e-3 * scale, k


@pytest.mark.parametrize("name", model_names())
def test_channels_last_bf16_autocast_follows_float32(name):
    # `locseg train` autocasts to bf16 on CPUs with native bf16: the channels-last layers must then compute
    # in bf16 (the direct oneDNN convolution is not autocast by torch, so the layer casts itself) and
    # follow the float32 result within bf16 rounding; the norms compute in float32. Runs on any CPU (bf16
    # is only slower where it is emulated).
    from locseg_cli.models.layout import to_layout

    cl = torch.channels_last_3d
    image, loc = _inputs(32)
    model = _build(name).train().to(memory_format=cl)
    x, lc = to_layout(image, cl), to_layout(loc, cl)
    torch.manual_seed(1)  # the same dropout masks in both passes
    y32 = model(x, lc)
    seen = []
    hook = model.unet.conv_0.conv_0.conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y16 = model(x, lc)
    hook.remove()
    assert seen == [torch.bfloat16]
    y16.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    err = float((y16.float() - y32).norm() / y32.norm())
    assert err < 3e-2, err  # measured 1.3-1.5 % (bf16 keeps 8 bits of mantissa)
