"""The plain branch layers take while a tracer records them (`models.layout.tracing`) has the same maths.

The registry-wide export tests compare whole networks; these pin the two layers whose fast form a
tracer cannot record (the max-pool autograd function, the fused LocBAM pass) on shapes the export
tests do not use: a non-cubic map (LocBAM's unstacked gates) and both memory layouts.
"""

from __future__ import annotations

import pytest
import torch

from locseg_cli.models.backbone import MaxPool2
from locseg_cli.models.layout import tracing
from locseg_cli.models.locbam import LocBAM


def _traced(module: torch.nn.Module, *inputs: torch.Tensor) -> torch.jit.ScriptModule:
    with torch.no_grad():
        return torch.jit.trace(module, inputs, check_trace=False)


def test_tracing_is_false_outside_a_tracer():
    assert tracing() is False


@pytest.mark.parametrize("channels_last", [False, True])
def test_locbam_traced_plain_branch_matches_fused_pass(channels_last):
    torch.manual_seed(0)
    block = LocBAM(8, reduction=2).eval()
    for gate in block.gates:  # gates that respond to the location
        for m in gate.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_var.fill_(0.5)
    x = torch.randn(2, 8, 6, 10, 12)  # non-cubic: one gate per axis, not stacked
    loc = torch.randn(2, 3, 6, 10, 12)
    traced = _traced(block, x, loc)
    assert "PythonOp" not in str(traced.graph)  # no autograd function recorded
    if channels_last:
        x, loc = x.contiguous(memory_format=torch.channels_last_3d), loc.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        expected = block(x, loc)
        torch.testing.assert_close(traced(x, loc), expected, atol=1e-5, rtol=1e-5)


def test_maxpool_traced_plain_branch_matches_autograd_function():
    x = torch.randn(2, 3, 8, 6, 4)
    traced = _traced(MaxPool2(), x)
    assert "PythonOp" not in str(traced.graph)
    torch.testing.assert_close(traced(x), MaxPool2()(x))
