"""Every registered model exports to ONNX and TorchScript, and the files compute PyTorch's logits.

Parametrised over the model registry (a new variant is tested by registering it). The reference is
the model as training runs it on CPU: channels-last, the fused LocBAM pass, the max-pool autograd
function; the exported files were traced through the plain branch (`models.layout.tracing`), so a
match also shows the two branches compute the same thing. BatchNorm statistics are randomised so
that the location gates are active, and the location input must change the logits of every model
that uses it (the exported graph really reads its location input).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from locseg_cli.export.formats import FORMATS
from locseg_cli.export.run import example_inputs
from locseg_cli.models import ModelConfig, build_model, model_names

PATCH = (32, 32, 32)
ATOL = 1e-4


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, features=(4, 4, 8, 8, 16, 4), out_channels=3, locbam_reduction=2))
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():  # trained-looking statistics: gates neither saturated nor dead
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 0.5 + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Files written per (model, format) on first use: the ONNX exporter takes seconds per model."""
    folder = tmp_path_factory.mktemp("exported")
    done: dict[tuple[str, str], tuple[torch.nn.Module, object]] = {}

    def get(name: str, fmt: str):
        if (name, fmt) not in done:
            model = _model(name)
            image, location = example_inputs(1, PATCH)
            path = folder / f"{name}-{FORMATS[fmt].file}"
            FORMATS[fmt].write(model, (torch.from_numpy(image), torch.from_numpy(location)), path)
            done[name, fmt] = model, path
        return done[name, fmt]

    return get


def _run_file(fmt: str, path, image: np.ndarray, location: np.ndarray) -> np.ndarray:
    """The file run the way another tool would: onnxruntime, or torch.jit.load (no locseg code)."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], {"image": image, "location": location})[0]
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(image), torch.from_numpy(location)).numpy()


def _reference(model: torch.nn.Module, image: np.ndarray, location: np.ndarray) -> np.ndarray:
    """Logits as training computes them on CPU: channels-last model and inputs (custom ops, fused LocBAM)."""
    cl = torch.channels_last_3d
    model = model.to(memory_format=cl)
    try:
        with torch.no_grad():
            return model(torch.from_numpy(image).contiguous(memory_format=cl),
                         torch.from_numpy(location).contiguous(memory_format=cl)).numpy()
    finally:
        model.to(memory_format=torch.contiguous_format)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", model_names())
def test_exported_file_matches_pytorch_logits_at_any_batch(exported, name, fmt):
    model, path = exported(name, fmt)
    rng = np.random.default_rng(7)
    for batch in (1, 3):  # traced with 2: the batch axis is dynamic
        image = rng.standard_normal((batch, 1, *PATCH)).astype(np.float32)
        location = np.stack([_patch_location(rng) for _ in range(batch)])
        got = _run_file(fmt, path, image, location)
        assert got.shape == (batch, 3, *PATCH)
        np.testing.assert_allclose(got, _reference(model, image, location), atol=ATOL, rtol=0)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", model_names())
def test_exported_file_reads_its_location_input(exported, name, fmt):
    model, path = exported(name, fmt)
    rng = np.random.default_rng(3)
    image = rng.standard_normal((1, 1, *PATCH)).astype(np.float32)
    location = _patch_location(rng)[None]
    moved = location.copy()
    moved[:, 0] += 0.3  # the axial channel, as shift-eval moves it
    change = np.abs(_run_file(fmt, path, image, moved) - _run_file(fmt, path, image, location)).max()
    if model.uses_location:
        assert change > 1e-3
    else:
        assert change == 0.0


def _patch_location(rng: np.random.Generator) -> np.ndarray:
    """(3, *PATCH) location channels of a patch at a random place in a volume about twice its size."""
    from locseg_cli.location import location_channels, location_vectors

    vectors = location_vectors([2 * p + 5 for p in PATCH])
    start = [int(rng.integers(-4, p + 8)) for p in PATCH]  # sometimes past the border: extended linearly
    return location_channels(vectors, start, PATCH)
