"""A tiny trained run (LocBAM, non-cubic patches) that the export tests export, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    from synthdata import write_tiny_run

    return write_tiny_run(tmp_path_factory.mktemp("export-run"), batch_size=2, iterations_per_epoch=2)
