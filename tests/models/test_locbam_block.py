"""LocBAM: per-axis gates fed their own axis' location; fused gating+fusion equals the naive form."""

from __future__ import annotations

import pytest
import torch

from locseg_cli.location import location_channels, location_vectors
from locseg_cli.models.locbam import LocBAM, axis_means, gate_fusion, naive_gated_concat

torch.set_num_threads(1)


def _location(batch: int, shape: tuple[int, int, int], start=(2, 3, 4)) -> torch.Tensor:
    vecs = location_vectors(tuple(2 * s for s in shape))
    loc = torch.from_numpy(location_channels(vecs, start, shape))
    return loc.unsqueeze(0).repeat(batch, 1, 1, 1, 1)


def _block(channels: int = 8, **kw) -> LocBAM:
    torch.manual_seed(0)
    return LocBAM(channels, reduction=4, dropout=0.0, **kw)


@pytest.mark.parametrize("inject", ["input", "mid"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_each_gate_depends_on_its_own_axis_location_only(axis, inject):
    block = _block(inject=inject).train()  # batch statistics: no gate is dead at initialisation
    x = torch.randn(2, 8, 6, 7, 9)
    loc = _location(2, (6, 7, 9))
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


def test_fused_function_gradcheck():
    torch.manual_seed(0)
    b, c, d, h, w = 2, 3, 5, 4, 6
    x = torch.randn(b, c, d, h, w, dtype=torch.float64, requires_grad=True)
    gates = [torch.rand(b, c, n, dtype=torch.float64, requires_grad=True) for n in (d, h, w)]
    weight = torch.randn(4, 3 * c, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gate_fusion, (x, *gates, weight, bias))
    assert torch.autograd.gradcheck(axis_means, (x,))


@pytest.mark.parametrize("shape", [(2, 8, 6, 7, 9), (1, 32, 16, 16, 16)])
def test_fused_block_matches_naive_block(shape):
    naive, fused = _block(shape[1], fused=False), _block(shape[1], fused=True)
    fused.load_state_dict(naive.state_dict())
    x = torch.randn(*shape)
    loc = _location(shape[0], shape[2:])
    weights = torch.randn(shape)
    outs, grads = [], []
    for block in (naive, fused):
        block.train()
        xi = x.clone().requires_grad_(True)
        y = block(xi, loc)
        (y * weights).sum().backward()
        outs.append(y.detach())
        grads.append([xi.grad] + [p.grad for p in block.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for gf, gn in zip(grads[1], grads[0]):
        torch.testing.assert_close(gf, gn, rtol=1e-5, atol=1e-5 * max(1.0, float(gn.abs().max())))


def test_fused_matches_naive_on_slab_boundaries(monkeypatch):
    # Force several slabs per volume (the default may fit a small test volume in one).
    import locseg_cli.models.locbam as lb

    monkeypatch.setattr(lb, "_CPU_SLAB_ELEMENTS", 2 * 4 * 5 * 3)  # 2 axial slices per slab, last one short
    torch.manual_seed(1)
    x = torch.randn(2, 4, 7, 5, 3, dtype=torch.float64, requires_grad=True)
    gates = [torch.rand(2, 4, n, dtype=torch.float64, requires_grad=True) for n in (7, 5, 3)]
    weight = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gate_fusion, (x, *gates, weight, bias))
    assert torch.autograd.gradcheck(axis_means, (x,))
    naive = torch.nn.functional.conv3d(naive_gated_concat(x, gates), weight.view(4, 12, 1, 1, 1), bias)
    torch.testing.assert_close(gate_fusion(x, *gates, weight, bias), naive)


def _saved_bytes(block: LocBAM, x: torch.Tensor, loc: torch.Tensor) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x, loc)
    return sum(seen.values()) - x.untyped_storage().nbytes()  # x itself is kept by the layer before


def test_fused_block_keeps_no_full_resolution_copies_for_backward():
    x = torch.randn(1, 16, 16, 16, 16, requires_grad=True)
    loc = _location(1, (16, 16, 16))
    naive, fused = _block(16, fused=False).train(), _block(16, fused=True).train()
    map_bytes = x.numel() * x.element_size()
    assert _saved_bytes(naive, x, loc) >= 3 * map_bytes  # the 3C concat
    assert _saved_bytes(fused, x, loc) < 0.1 * map_bytes  # gates and weights only
