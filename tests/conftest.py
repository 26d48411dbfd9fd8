"""Shared fixtures. Tests build their own small data; nothing is downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
