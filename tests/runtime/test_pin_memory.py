"""Page-locked batches only where a CUDA copy can use them: the guard, checked on a CPU machine."""

from __future__ import annotations

import pytest
import torch

from locseg_cli.runtime.device import pin_memory_for


@pytest.mark.parametrize("device, cuda_available, expected", [
    ("cpu", False, False), ("cpu", True, False),  # CPU training never pins, even on a machine with a GPU
    ("cuda", True, True), ("cuda:1", True, True),
    ("cuda", False, False),  # a CUDA device named where torch has no CUDA: no pinning (it would fail)
])
def test_pin_memory_only_for_an_available_cuda_device(monkeypatch, device, cuda_available, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_available)
    assert pin_memory_for(torch.device(device)) is expected

