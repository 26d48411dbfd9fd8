"""The lean batch (per-axis location vectors, uint8 labels, patches in the volumes' memory order) trains
bit for bit like the channel batch it replaced (three float32 location channels, int64 labels, C order),
for every registered model, in both layouts, with and without location noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from locseg_cli.config import resolve_config
from locseg_cli.io.manifest import read_manifest
from locseg_cli.location import channels_from_patch_vectors
from locseg_cli.models import ModelConfig, build_model, model_names
from locseg_cli.models.layout import to_layout
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.sampling import PatchBatches, PatchSampler
from locseg_cli.training import TrainConfig
from locseg_cli.training.trainer import batch_to_device, make_loss, make_optimizer, train_step

NARROW = (4, 4, 8, 8, 16, 4)
PATCH = (16, 16, 32)  # not cubic: the vectors' three axes have different lengths
STEPS = 2

# every registry entry as built by default, and the variants that take another location path
VARIANTS = [(name, {}) for name in model_names()] + [
    ("coordconv", {"coordconv_inject": "all"}), ("locbam", {"locbam_fused": False}),
    ("locbam", {"locbam_inject": "mid"})]


@pytest.fixture(scope="module")
def lean_batches(tmp_path_factory) -> tuple[list[dict[str, torch.Tensor]], int]:
    from synthdata import write_dataset

    root = tmp_path_factory.mktemp("lean")
    write_dataset(root / "raw", n=3)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    manifest = read_manifest(root / "pre", "preprocess")
    sampler = PatchSampler(root / "pre", manifest, sorted(manifest.cases), PATCH, 4, seed=1)
    batches = [PatchBatches(sampler)[i] for i in range(STEPS)]
    classes = max(int(v) for v in manifest.extra["labels"]) + 1
    return batches, classes


def channel_batch(lean: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch as the sampler made it before: C-ordered image, (B,3,*P) location channels, int64 labels."""
    return {"image": torch.from_numpy(np.ascontiguousarray(lean["image"].numpy())),
            "location": torch.from_numpy(channels_from_patch_vectors(lean["location"].numpy(), PATCH)),
            "label": torch.from_numpy(np.ascontiguousarray(lean["label"].numpy()).astype(np.int64))}


def channel_batch_to_device(batch: dict[str, torch.Tensor], layout: torch.memory_format):
    """The trainer's transfer of the channel batch, as it was: image and channels into the layout."""
    return to_layout(batch["image"], layout), to_layout(batch["location"], layout), batch["label"]


def _train(name: str, options: dict, noise: float, layout: torch.memory_format, classes: int, batches, lean: bool):
    """STEPS trainer steps from fresh weights: (losses, final state dict)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, features=NARROW, out_channels=classes, location_noise=noise,
                                    locbam_reduction=4, **options))
    model.to(memory_format=layout).train()
    cfg = TrainConfig()
    optimizer, loss_fn = make_optimizer(cfg, model.parameters()), make_loss()
    losses = []
    for it, batch in enumerate(batches):
        torch.manual_seed(100 + it)  # the trainer reseeds each iteration (dropout, location noise)
        if lean:
            image, location, label = batch_to_device(batch, torch.device("cpu"), layout, model.needs_location_channels)
        else:
            image, location, label = channel_batch_to_device(channel_batch(batch), layout)
        losses.append(train_step(model, model, optimizer, loss_fn, image, location, label, cfg.grad_clip))
    return losses, {k: v.clone() for k, v in model.state_dict().items()}


# both layouts; location noise (a per-patch offset, added to vectors or channels) in the CPU default layout
SETTINGS = [(torch.channels_last_3d, 0.0), (torch.contiguous_format, 0.0), (torch.channels_last_3d, 0.05)]


@pytest.mark.parametrize("layout, noise", SETTINGS, ids=["channels_last", "contiguous", "channels_last-noise"])
@pytest.mark.parametrize("name, options", VARIANTS, ids=[f"{n}{''.join(f'-{v}' for v in o.values())}" for n, o in VARIANTS])
def test_lean_batch_trains_bit_for_bit_like_the_channel_batch(lean_batches, name, options, layout, noise):
    torch.set_num_threads(1)
    batches, classes = lean_batches
    losses_c, state_c = _train(name, options, noise, layout, classes, batches, lean=False)
    losses_l, state_l = _train(name, options, noise, layout, classes, batches, lean=True)
    assert all(torch.isfinite(v) for v in losses_c)
    assert [float(v) for v in losses_l] == [float(v) for v in losses_c]
    assert state_l.keys() == state_c.keys()
    for key in state_c:
        assert torch.equal(state_l[key], state_c[key]), key


def test_the_lean_batch_is_a_quarter_of_the_channel_batch(lean_batches):
    batches, _ = lean_batches
    lean = batches[0]
    lean_bytes = sum(t.numel() * t.element_size() for t in lean.values())
    channel_bytes = sum(t.numel() * t.element_size() for t in channel_batch(lean).values())
    b, p = 4, int(np.prod(PATCH))
    assert lean_bytes == b * p * 4 + b * sum(PATCH) * 4 + b * p  # image float32, vectors float32, labels uint8
    assert channel_bytes == b * p * 4 + b * 3 * p * 4 + b * p * 8
    assert lean_bytes * 4 < channel_bytes


def test_only_models_that_concatenate_the_location_get_channels(lean_batches):
    batches, classes = lean_batches
    needs = {name: build_model(ModelConfig(model=name, features=NARROW, out_channels=classes)).needs_location_channels
             for name in model_names()}
    assert needs["coordconv"] and not needs["locbam"] and not needs["baseline"]
    _, location, label = batch_to_device(batches[0], torch.device("cpu"), torch.contiguous_format, True)
    assert location.shape == (4, 3, *PATCH) and label.dtype == torch.int64 and label.is_contiguous()
    _, location, _ = batch_to_device(batches[0], torch.device("cpu"), torch.contiguous_format, False)
    assert location.shape == (4, sum(PATCH))
