"""The on-disk contract between stages: one `manifest.json` per output folder.

A manifest records the stage, schema and package version, the resolved config, each input folder
with its fingerprint, the cases with their files and metadata, and the stage's own fingerprint
(hash of config + input fingerprints + schema). `StageWriter` uses it to skip work that is up to
date, to redo only cases whose inputs or config changed, and to resume after an interruption.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import LocsegError
from .atomic import TMP_PREFIX, read_json, safe_join, sweep_temporaries, validate_case_id, write_json
from .lock import LOCK, FolderLock

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    """Cheap identity of a user's file (size + modification time), for folders without a manifest."""
    st = Path(path).stat()
    return fingerprint([Path(path).name, st.st_size, st.st_mtime_ns])


@dataclass
class Manifest:
    stage: str
    config: dict[str, Any]
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    complete: bool = False
    schema: int = SCHEMA_VERSION
    version: str = __version__

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "schema": self.schema, "version": self.version,
            "fingerprint": self.fingerprint, "complete": self.complete, "config": self.config,
            "inputs": self.inputs, "cases": self.cases, "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Manifest:
        if not isinstance(data, dict) or "stage" not in data or "schema" not in data:
            raise LocsegError("not a locseg manifest (missing 'stage' or 'schema')", path)
        if not isinstance(data["schema"], int) or data["schema"] > SCHEMA_VERSION:
            raise LocsegError(
                f"manifest schema {data['schema']} is newer than this locseg understands ({SCHEMA_VERSION}); "
                "upgrade locseg", path)
        if data["schema"] < SCHEMA_VERSION:
            raise LocsegError(f"manifest schema {data['schema']} is from an older locseg; rerun that stage "
                              "with --force", path)
        cases = data.get("cases", {}) or {}
        for cid, entry in cases.items():
            validate_case_id(cid, path)
            for rel in ((entry or {}).get("files") or {}).values():  # no file outside the folder, ever
                if not isinstance(rel, str):
                    raise LocsegError(f"case {cid!r}: file entry {rel!r} is not a path", path)
                case_path(path.parent, rel)
        return cls(stage=data["stage"], config=data.get("config", {}), inputs=data.get("inputs", {}),
                   cases=cases, extra=data.get("extra", {}), fingerprint=data.get("fingerprint", ""),
                   complete=bool(data.get("complete", False)), schema=data["schema"],
                   version=data.get("version", ""))


def read_manifest(folder: str | Path, stage: str | tuple[str, ...] | None = None) -> Manifest:
    """The manifest of a stage output, checked to be of the expected stage and complete."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        want = f"a `locseg {stage if isinstance(stage, str) else '/'.join(stage)}` output" if stage else \
            "a locseg stage output"
        raise LocsegError(f"no {MANIFEST} here: expected {want}", folder)
    m = Manifest.from_json(read_json(path), path)
    if stage is not None:
        stages = (stage,) if isinstance(stage, str) else stage
        if m.stage not in stages:
            raise LocsegError(f"this is a `{m.stage}` output, expected `{' or '.join(stages)}`", folder)
    if not m.complete:
        raise LocsegError(f"the `{m.stage}` stage did not finish here; rerun it", folder)
    return m


def case_path(folder: str | Path, relative: str) -> Path:
    """A file named in a manifest, refusing names that point outside its folder."""
    return safe_join(folder, *Path(relative).parts)


class StageWriter:
    """Writes one stage's output folder: lock, up-to-date check, per-case resume, manifest.

    Usage::

        with StageWriter("preprocess", out, config, {"data": (data_dir, data_fp)}, force) as w:
            if w.up_to_date: return
            for case in cases:
                cfp = w.case_fingerprint(case_input_fp)
                if w.case_done(case.id, cfp): continue
                ... write files with atomic_path(w.path(name)) ...
                w.add_case(case.id, files, meta, cfp)
            w.finish(extra)
    """

    def __init__(self, stage: str, out: str | Path, config: dict[str, Any],
                 inputs: dict[str, tuple[str | Path, str]], force: bool = False):
        self.stage = stage
        self.out = Path(out)
        for name, (path, _) in inputs.items():
            p = Path(path).resolve()
            o = self.out.resolve()
            if o == p or p in o.parents or o in p.parents:
                raise LocsegError(f"--out must not be inside --{name} or contain it", out)
        self.config = config
        self.inputs = {k: {"path": str(Path(p).resolve()), "fingerprint": fp} for k, (p, fp) in inputs.items()}
        self.force = force
        base = {"stage": stage, "schema": SCHEMA_VERSION, "config": config}
        self._base_fp = fingerprint(base)
        self.fingerprint = fingerprint({**base, "inputs": {k: v["fingerprint"] for k, v in self.inputs.items()}})
        self.previous: Manifest | None = None
        self.manifest: Manifest | None = None
        self._lock: FolderLock | None = None
        self._created: Path | None = None
        self._emptied = False
        self._times: tuple[int, int] | None = None
        self._added = False

    # -- context management: lock the folder while writing ----------------------------------
    def __enter__(self) -> StageWriter:
        if self.out.exists() and not self.out.is_dir():
            raise LocsegError("exists and is not a folder", self.out)
        mpath = self.out / MANIFEST
        self._read_out(locked=False)
        self._created = _first_missing(self.out)  # the outermost folder this run creates, if any
        self._emptied = self.out.is_dir() and not mpath.is_file()  # an empty folder we may leave empty again
        self._times = (self.out.stat().st_atime_ns, self.out.stat().st_mtime_ns) if self._emptied else None
        self._added = False
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = FolderLock(self.out)
        self._lock.acquire()
        try:
            self._read_out(locked=True)  # again: the run that held the lock until now may have written here
            if mpath.is_file():  # not ours to roll back, whoever made it
                self._created, self._emptied = None, False
            self._saved = len(self.previous.cases) if self.previous else 0  # cases the manifest on disk lists
            sweep_temporaries(self.out)
            self.manifest = Manifest(stage=self.stage, config=self.config, inputs=self.inputs,
                                     fingerprint=self.fingerprint)
            if not mpath.is_file():  # claim the folder before the first file lands in it
                self._write(complete=False)
        except BaseException:  # __exit__ will not run: do not leave the lock behind
            self._unlock()
            raise
        return self

    def _read_out(self, locked: bool) -> None:
        """Check --out can take this stage's output and read its previous manifest.

        Before the lock a folder that another run is filling may look foreign; only the check under the
        lock, when that run is done, may then say so.
        """
        mpath = self.out / MANIFEST
        self.previous = None
        if mpath.is_file():
            prev = Manifest.from_json(read_json(mpath), mpath)
            if prev.stage != self.stage:
                raise LocsegError(f"holds a `{prev.stage}` output; choose another --out for `{self.stage}`",
                                  self.out)
            self.previous = None if self.force else prev
        elif self.out.is_dir() and any(not p.name.startswith((LOCK, TMP_PREFIX)) for p in self.out.iterdir()) \
                and (locked or not (self.out / LOCK).exists()):
            raise LocsegError("is not empty and holds no locseg manifest; choose an empty or new folder",
                              self.out)

    def __exit__(self, exc_type=None, exc=None, tb=None) -> None:
        self._unlock()
        if exc_type is not None and issubclass(exc_type, LocsegError) and not self._added:
            self._roll_back()
        # A stage that exits by hand from a `finally` (train) passes no exception: the one in flight is here.
        exc = exc if exc_type is not None else sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # not a bug: one line; what was finished stays (atomic writes left no half file) for the rerun
            kept = f"the {self._saved} finished case(s) are kept" if self._saved else "what was finished is kept"
            name = re.sub(rf"^{re.escape(TMP_PREFIX)}[0-9a-f]+-", "", Path(exc.filename).name) if exc.filename else "here"
            raise LocsegError(f"the disk filled up while writing {name} ({exc.strerror}); "
                              f"{kept}: free space and rerun the same command", self.out) from None

    def _roll_back(self) -> None:
        """A user error stopped the stage before it finished any case: leave --out as it was.

        Only what this run made goes: the folders it created, or the content of the empty folder it
        was given. A folder with a previous output keeps it (its manifest was not rewritten).
        """
        if self._created is not None:
            shutil.rmtree(self._created, ignore_errors=True)
        elif self._emptied:
            for p in self.out.iterdir():
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            os.utime(self.out, ns=self._times)

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- queries -------------------------------------------------------------------------------
    def _is_current(self, previous: Manifest | None) -> bool:
        """`previous` is this stage's, finished, with the same fingerprint, and all its files are there."""
        if previous is None or previous.stage != self.stage or not previous.complete:
            return False
        return previous.fingerprint == self.fingerprint and all(
            self._files_exist(c) for c in previous.cases.values())

    @property
    def up_to_date(self) -> bool:
        """The previous run (read on entering) is current: nothing to do."""
        return self._is_current(self.previous)

    def already_done(self) -> Manifest | None:
        """Read-only early check: the previous output if it is up to date (no lock, nothing written).

        Lets a stage skip its expensive set-up (models, integrity checks) when nothing changed.
        """
        mpath = self.out / MANIFEST
        if self.force or not mpath.is_file():
            return None
        try:
            prev = Manifest.from_json(read_json(mpath), mpath)
        except LocsegError:
            return None
        return prev if self._is_current(prev) else None

    def case_fingerprint(self, input_fingerprint: Any) -> str:
        return fingerprint([self._base_fp, input_fingerprint])

    def case_done(self, case_id: str, case_fp: str) -> bool:
        """A case from the previous (possibly interrupted) run that needs no redo; carried over."""
        p = self.previous
        if p is None or case_id not in p.cases:
            return False
        entry = p.cases[case_id]
        if entry.get("fingerprint") != case_fp or not self._files_exist(entry):
            return False
        self.manifest.cases[case_id] = entry
        return True

    def _files_exist(self, entry: dict[str, Any]) -> bool:
        return all(case_path(self.out, f).is_file() for f in entry.get("files", {}).values())

    def path(self, *parts: str) -> Path:
        return safe_join(self.out, *parts)

    # -- updates -------------------------------------------------------------------------------
    def add_case(self, case_id: str, files: dict[str, str], meta: dict[str, Any], case_fp: str) -> None:
        validate_case_id(case_id)
        self.manifest.cases[case_id] = {"files": files, "meta": meta, "fingerprint": case_fp}
        self._added = True
        self._write(complete=False)

    def finish(self, extra: dict[str, Any] | None = None) -> Manifest:
        if self._lock is not None:
            self._lock.check()  # never mark finished a folder another run took over meanwhile
        self.manifest.extra = extra or {}
        self.manifest.cases = dict(sorted(self.manifest.cases.items()))
        self._added = True
        self._write(complete=True)
        return self.manifest

    def keep_previous(self) -> Manifest:
        """Nothing to do: leave the previous manifest as it is."""
        return self.previous

    def _write(self, complete: bool) -> None:
        self.manifest.complete = complete
        write_json(self.out / MANIFEST, self.manifest.to_json())
        self._saved = len(self.manifest.cases)  # what a rerun will find


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None if `folder` exists)."""
    if folder.exists():
        return None
    missing = folder
    for parent in folder.absolute().parents:
        if parent.exists():
            break
        missing = parent
    return missing


def folder_fingerprint(folder: str | Path) -> str:
    """The fingerprint of a stage output (from its manifest) or, for a user's folder, of its files."""
    folder = Path(folder)
    m = folder / MANIFEST
    if m.is_file():
        data = read_json(m)
        if isinstance(data, dict) and data.get("fingerprint"):
            return str(data["fingerprint"])
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return fingerprint([[str(p.relative_to(folder)), file_fingerprint(p)] for p in files])
