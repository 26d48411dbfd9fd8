"""LocBAM: per-axis gates fed their own axis' location; fused gating+fusion equals the naive form."""

from __future__ import annotations

import pytest
import torch

from locseg_cli.location import location_channels, location_vectors
from locseg_cli.models import locbam as lb
from locseg_cli.models import locbam_fused as lbf
from locseg_cli.models.layout import is_channels_last
from locseg_cli.models.locbam import LocBAM, naive_gated_concat
from locseg_cli.models.locbam_fused import axis_means, gate_fusion, stacked_gates

torch.set_num_threads(1)


def _location(batch: int, shape: tuple[int, int, int], start=(2, 3, 4)) -> torch.Tensor:
    vecs = location_vectors(tuple(2 * s for s in shape))
    loc = torch.from_numpy(location_channels(vecs, start, shape))
    return loc.unsqueeze(0).repeat(batch, 1, 1, 1, 1)


def _block(channels: int = 8, **kw) -> LocBAM:
    torch.manual_seed(0)
    return LocBAM(channels, reduction=4, dropout=0.0, **kw)


@pytest.mark.parametrize("shape", [(6, 7, 9), (8, 8, 8)])  # per-gate modules; the three gates stacked
@pytest.mark.parametrize("inject", ["input", "mid"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_each_gate_depends_on_its_own_axis_location_only(axis, inject, shape):
    block = _block(inject=inject).train()  # batch statistics: no gate is dead at initialisation
    x = torch.randn(2, 8, *shape)
    loc = _location(2, shape)
    moved = loc.clone()
    moved[:, axis] += 0.1 * torch.arange(1, 3).view(2, 1, 1, 1)  # a different shift per patch
    with torch.no_grad():
        before, after = block.axis_gates(x, loc), block.axis_gates(x, moved)
    for a in range(3):
        assert torch.equal(before[a], after[a]) == (a != axis), f"gate {a} after moving channel {axis}"


def test_gate_a_sees_a_location_that_varies_along_axis_a():
    # The public code's AMOS/KiTS defect: a gate fed a channel constant along its axis sees a constant.
    block = _block().train()
    seen = []
    for gate in block.gates:
        gate.register_forward_hook(lambda mod, args, out: seen.append(args[1]))
    loc = _location(1, (6, 7, 9))
    block(torch.randn(1, 8, 6, 7, 9), loc)
    for a, position in enumerate(seen):
        assert position.shape == (1, 1, (6, 7, 9)[a])
        assert (position[0, 0, 1:] - position[0, 0, :-1] > 0).all()


def test_gate_shapes_follow_hanet():
    block = LocBAM(32)  # r = 32: 32 -> 1 -> 2 -> 32
    gate = block.gates[0]
    assert gate.first[0].weight.shape == (1, 32, 1) and gate.first[0].bias is None
    assert gate.rest[0].weight.shape == (2, 1, 3)
    assert gate.rest[3].weight.shape == (32, 2, 3)
    assert isinstance(gate.dropout, torch.nn.Dropout1d) and gate.dropout.p == 0.1
    assert block.fuse.weight.shape == (32, 96, 1, 1, 1)
    two = LocBAM(32, layers=2, kernel=5)
    assert two.gates[0].rest[0].weight.shape == (32, 1, 5)


CL = torch.channels_last_3d
LAYOUTS = pytest.mark.parametrize("channels_last", [False, True], ids=["default", "channels_last"])


def _gradcheck_fused(b: int, c: int, d: int, h: int, w: int, seed: int = 0, channels_last: bool = False) -> None:
    torch.manual_seed(seed)
    x = torch.randn(b, c, d, h, w, dtype=torch.float64)
    x = (x.contiguous(memory_format=CL) if channels_last else x).requires_grad_(True)
    assert is_channels_last(x) == channels_last
    gates = [torch.rand(b, c, n, dtype=torch.float64, requires_grad=True) for n in (d, h, w)]
    weight = torch.randn(4, 3 * c, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gate_fusion, (x, *gates, weight, bias))
    assert torch.autograd.gradcheck(axis_means, (x,))
    naive = torch.nn.functional.conv3d(naive_gated_concat(x, gates), weight.view(4, 3 * c, 1, 1, 1), bias)
    fused = gate_fusion(x, *gates, weight, bias)
    torch.testing.assert_close(fused, naive)
    assert fused.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)
    means = [x.mean(dim=lb._others(a)) for a in range(3)]
    for got, want in zip(axis_means(x), means):
        torch.testing.assert_close(got, want)


@LAYOUTS
def test_fused_function_gradcheck(channels_last):
    # Default budget: the whole tiny batch is one piece (batched matmuls, no loop).
    assert lbf._plan((2, 3, 5, 4, 6), torch.device("cpu")) == [(0, 2, [(0, 5)])]
    _gradcheck_fused(2, 3, 5, 4, 6, channels_last=channels_last)


@LAYOUTS
def test_fused_matches_naive_on_patch_chunks(monkeypatch, channels_last):
    # A budget of two patches: pieces of two whole patches (batched) and one (single).
    monkeypatch.setattr(lbf, "_CPU_SLAB_ELEMENTS", 2 * 3 * 5 * 4 * 6)
    assert lbf._plan((3, 3, 5, 4, 6), torch.device("cpu")) == [(0, 2, [(0, 5)]), (2, 3, [(0, 5)])]
    _gradcheck_fused(3, 3, 5, 4, 6, seed=2, channels_last=channels_last)


@LAYOUTS
@pytest.mark.parametrize("shape", [(4, 4, 4), (3, 4, 5)])  # stacked gates; per-gate modules
def test_fused_block_gradcheck(shape, channels_last):
    # The whole fused block in float64: profiles (gradients as broadcast views added in place), gates, fusion.
    torch.manual_seed(0)
    block = LocBAM(4, reduction=2, dropout=0.0, fused=True).double().train()
    loc = _location(2, shape).double()
    x = torch.randn(2, 4, *shape, dtype=torch.float64)
    x = (x.contiguous(memory_format=CL) if channels_last else x).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: block(t, loc), (x,))


@LAYOUTS
@pytest.mark.parametrize("shape", [(2, 8, 6, 7, 9), (1, 32, 16, 16, 16)])
def test_fused_block_matches_naive_block(shape, channels_last):
    # The naive block in the default layout is the reference for the fused block in either layout.
    naive, fused = _block(shape[1], fused=False), _block(shape[1], fused=True)
    fused.load_state_dict(naive.state_dict())
    x = torch.randn(*shape)
    loc = _location(shape[0], shape[2:])
    weights = torch.randn(shape)
    outs, grads = [], []
    for block in (naive, fused):
        block.train()
        xi = (x.contiguous(memory_format=CL) if channels_last and block is fused else x.clone()).requires_grad_(True)
        y = block(xi, loc)
        (y * weights).sum().backward()
        outs.append(y.detach())
        grads.append([xi.grad] + [p.grad for p in block.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for gf, gn in zip(grads[1], grads[0]):
        torch.testing.assert_close(gf, gn, rtol=1e-5, atol=1e-5 * max(1.0, float(gn.abs().max())))


@LAYOUTS
def test_fused_matches_naive_on_slab_boundaries(monkeypatch, channels_last):
    # Force several slabs per patch (the default may fit a small test volume in one).
    monkeypatch.setattr(lbf, "_CPU_SLAB_ELEMENTS", 2 * 4 * 5 * 3)  # 2 axial slices per slab, last one short
    slabs = [(0, 2), (2, 2), (4, 2), (6, 1)]
    assert lbf._plan((2, 4, 7, 5, 3), torch.device("cpu")) == [(0, 1, slabs), (1, 2, slabs)]
    _gradcheck_fused(2, 4, 7, 5, 3, seed=1, channels_last=channels_last)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("inject", ["input", "mid", "none"])
@pytest.mark.parametrize("layers", [2, 3])
def test_stacked_gates_equal_the_gate_modules(norm, inject, layers):
    import copy

    torch.manual_seed(0)
    block = LocBAM(8, reduction=4, dropout=0.0, norm=norm, inject=inject, layers=layers, kernel=5 if layers == 2 else 3)
    reference = copy.deepcopy(block)
    for training in (True, False, True):
        block.train(training)
        reference.train(training)
        pooled = torch.randn(3, 2, 8, 6, requires_grad=True)
        position = torch.randn(3, 2, 1, 6)
        got = stacked_gates(block.gates, pooled, position)
        pooled_ref = pooled.detach().clone().requires_grad_(True)
        want = torch.stack([gate(pooled_ref[a], position[a]) for a, gate in enumerate(reference.gates)])
        torch.testing.assert_close(got, want)
        weights = torch.randn_like(got)
        (got * weights).sum().backward()
        (want * weights).sum().backward()
        torch.testing.assert_close(pooled.grad, pooled_ref.grad)
        for (name, p), q in zip(block.named_parameters(), reference.parameters()):
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None:
                torch.testing.assert_close(p.grad, q.grad, msg=name)
        for (name, buf), ref in zip(block.named_buffers(), reference.buffers()):  # running statistics
            torch.testing.assert_close(buf, ref, msg=name)


def test_stacked_gate_dropout_drops_whole_channels_per_gate_and_patch():
    # Identity gates (1x1 convs = I, no norm, no location): gate = sigmoid(dropout(pooled)), so a dropped
    # channel reads sigmoid(0) = 0.5 along its whole axis and a kept one sigmoid(pooled / (1 - p)).
    torch.manual_seed(0)
    block = LocBAM(16, reduction=1, kernel=1, layers=2, dropout=0.5, norm="none", inject="none").train()
    with torch.no_grad():
        for gate in block.gates:
            gate.first[0].weight.copy_(torch.eye(16)[:, :, None])
            gate.rest[0].weight.copy_(torch.eye(16)[:, :, None])
            gate.rest[0].bias.zero_()
    pooled = torch.rand(3, 4, 16, 8) + 1.0
    with torch.no_grad():
        out = stacked_gates(block.gates, pooled, torch.zeros(3, 4, 1, 8))
    dropped = out == 0.5
    rows = dropped.all(-1)
    assert (dropped.any(-1) == rows).all()  # whole channels, never single positions
    torch.testing.assert_close(out[~dropped], torch.sigmoid(2 * pooled)[~dropped])
    assert 0.3 < rows.float().mean() < 0.7
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])  # each gate its own mask
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(stacked_gates(block.gates, pooled, torch.zeros(3, 4, 1, 8)), torch.sigmoid(pooled))


def _saved_storages(block: LocBAM, x: torch.Tensor, loc: torch.Tensor) -> list[int]:
    """Bytes of each distinct storage autograd keeps for backward, x itself left out (the layer before keeps it)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x, loc)
    seen.pop(x.untyped_storage().data_ptr(), None)
    return list(seen.values())


@pytest.mark.parametrize("shape", [(16, 16, 16), (12, 16, 20)])  # stacked gates; per-gate modules
def test_fused_block_keeps_no_full_resolution_copies_for_backward(shape):
    x = torch.randn(1, 16, *shape, requires_grad=True)
    loc = _location(1, shape)
    naive, fused = _block(16, fused=False).train(), _block(16, fused=True).train()
    map_bytes = x.numel() * x.element_size()
    assert sum(_saved_storages(naive, x, loc)) >= 3 * map_bytes  # the 3C concat
    kept = _saved_storages(fused, x, loc)
    assert max(kept) < map_bytes / 16  # gates, weights, 1D profiles: nothing the size of one channel of x
    assert sum(kept) < 0.15 * map_bytes
