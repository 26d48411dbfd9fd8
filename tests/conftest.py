"""Shared fixtures. Tests build their own small data (helpers in synthdata.py); nothing is downloaded.

Helpers live in `synthdata.py`, not here: several test folders have a conftest.py of their own,
and `from conftest import ...` would resolve to whichever was imported first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def tiny_raw(tmp_path: Path) -> Path:
    from synthdata import write_dataset

    return write_dataset(tmp_path / "raw")
