"""The synthetic cohort's ground-truth body position: `bodypos/{case}.json` beside the images.

One file per case, written by `locseg synth` and read by `preprocess --location truth`, `bpr train`
(landmarks) and `bpr evaluate`; its fields are described in docs/phantom.md. Every path to it is
built here, inside the dataset folder (`safe_join`: a case id cannot point outside).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LocsegError
from .atomic import read_json, safe_join, write_json

BODYPOS_DIR = "bodypos"


def bodypos_path(data_root: str | Path, case_id: str) -> Path:
    """Where the body position of `case_id` lies in the dataset folder `data_root`."""
    return safe_join(data_root, BODYPOS_DIR, f"{case_id}.json")


def read_bodypos(data_root: str | Path, case_id: str) -> dict[str, Any] | None:
    """The ground-truth body position of a case, or None when the dataset has none for it."""
    path = bodypos_path(data_root, case_id)
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise LocsegError("expected a JSON object", path)
    return data


def write_bodypos(data_root: str | Path, case_id: str, record: dict[str, Any]) -> str:
    """Write a case's body position (atomically); returns its path relative to `data_root`."""
    write_json(bodypos_path(data_root, case_id), record)
    return f"{BODYPOS_DIR}/{case_id}.json"
