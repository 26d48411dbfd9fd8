"""Which precision a device trains in: autocast only where the hardware computes it natively."""

from __future__ import annotations

import pytest
import torch

import locseg_cli.runtime.device as device_mod
from locseg_cli.runtime.device import autocast_dtype


@pytest.mark.parametrize("native, amp, dtype, expected", [
    (True, True, "bf16", torch.bfloat16),   # a CPU with AMX: bf16
    (False, True, "bf16", None),            # emulated bf16 is slower than float32
    (True, True, "fp16", None),             # no fast CPU fp16 path
    (True, False, "bf16", None),            # --no-amp
])
def test_cpu_autocasts_to_bf16_only_with_native_bf16(monkeypatch, native, amp, dtype, expected):
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: native)
    assert autocast_dtype(amp, dtype, torch.device("cpu")) is expected


@pytest.mark.parametrize("amp, dtype, expected", [(True, "bf16", torch.bfloat16), (True, "fp16", torch.float16),
                                                  (False, "bf16", None)])
def test_cuda_autocasts_as_asked(amp, dtype, expected):
    assert autocast_dtype(amp, dtype, torch.device("cuda")) is expected
