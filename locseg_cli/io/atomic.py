"""Atomic file writes: write to a temporary name in the same folder, then rename into place.

An interrupted stage therefore never leaves a half-written file under its final name; the
temporary names start with `.tmp-` and are swept by the next run of the stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import LocsegError

TMP_PREFIX = ".tmp-"
_CASE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final` (same suffixes); rename it to `final` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{final.name}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_new_dir(final: str | Path, replace: bool = False) -> Path:
    """`final` as a Path when a new folder may take its place: absent, empty, or `replace`; else one line."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise LocsegError("exists and is not a folder", final)
    if final.is_dir() and any(final.iterdir()) and not replace:
        raise LocsegError("exists and is not empty; pass --force to replace it", final)
    return final


@contextmanager
def atomic_dir(final: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it becomes `final` by one rename.

    For outputs that are a few files which only make sense together (an exported model and its
    card): a failure removes the temporary folder, so `final` holds all of them or none. An existing
    non-empty `final` is refused unless `replace` (then moved aside and removed after the rename).
    A killed run cannot clean up, so the temporary folders an earlier run left for this `final` are
    removed first.
    """
    final = check_new_dir(final, replace)
    final.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(rf"^{re.escape(TMP_PREFIX)}[0-9a-f]{{8}}-(old-)?{re.escape(final.name)}$")
    for p in final.parent.iterdir():
        if p.is_dir() and stale.match(p.name):
            shutil.rmtree(p, ignore_errors=True)
    tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{final.name}")
    tmp.mkdir()
    try:
        yield tmp
        aside = None
        if final.is_dir():
            aside = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-old-{final.name}")
            os.rename(final, aside)
        os.rename(tmp, final)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LocsegError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LocsegError(f"not valid JSON ({exc})", path) from None


def sweep_temporaries(folder: str | Path) -> int:
    """Remove temporary files an interrupted run left behind; returns how many."""
    n = 0
    for p in Path(folder).rglob(f"{TMP_PREFIX}*"):
        if p.is_file():
            p.unlink()
            n += 1
    return n


def validate_case_id(case_id: str, source: str | Path | None = None) -> str:
    """Case ids become file names: letters, digits, `_`, `-`, `.` only, no leading dot."""
    if not isinstance(case_id, str) or not _CASE_ID.match(case_id) or ".." in case_id:
        raise LocsegError(
            f"invalid case id {case_id!r}: use letters, digits, '_', '-', '.' (no path separators)", source
        )
    return case_id


def safe_join(root: str | Path, *parts: str) -> Path:
    """`root/parts...`, refusing any result that would lie outside `root`."""
    root_r = Path(root).resolve()
    target = root_r.joinpath(*parts).resolve()
    if target != root_r and root_r not in target.parents:
        raise LocsegError(f"path {'/'.join(parts)!r} escapes its folder", root)
    return target
