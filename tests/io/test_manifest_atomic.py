"""The manifest is never written in place: every version lands through a temporary file and a rename.

A reader (or a kill) at any moment sees either the previous complete manifest or the next one,
never a half-written file. Observed deterministically: every open for writing and every rename is
recorded while a stage writes its output.
"""

from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path

from locseg_cli.io.manifest import MANIFEST, StageWriter, read_manifest


def test_every_manifest_write_is_a_rename_of_a_complete_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    final = (out / MANIFEST).absolute()
    opened: list[Path] = []
    renamed: list[tuple[Path, dict]] = []
    real_open, real_io_open, real_os_open, real_replace, real_rename = (
        builtins.open, io.open, os.open, os.replace, os.rename)

    def writing(mode: str) -> bool:
        return any(c in mode for c in "wax+")

    def spy_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and writing(mode):
            opened.append(Path(file).absolute())
        return real_open(file, mode, *args, **kwargs)

    def spy_io_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and writing(mode):
            opened.append(Path(file).absolute())
        return real_io_open(file, mode, *args, **kwargs)

    def spy_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR):
            opened.append(Path(path).absolute())
        return real_os_open(path, flags, *args, **kwargs)

    def spy_rename(real):
        def rename(src, dst, *args, **kwargs):
            if Path(dst).absolute() == final:
                renamed.append((Path(src), json.loads(Path(src).read_text())))  # complete before it lands
            return real(src, dst, *args, **kwargs)
        return rename

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_io_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(os, "replace", spy_rename(real_replace))
    monkeypatch.setattr(os, "rename", spy_rename(real_rename))

    with StageWriter("demo", out, {"k": 1}, {}) as w:
        for cid in ("a", "b"):
            path = w.path(f"{cid}.txt")
            path.write_text(cid)
            w.add_case(cid, {"file": f"{cid}.txt"}, {}, w.case_fingerprint(cid))
        w.finish({"done": True})
    monkeypatch.undo()

    assert final not in opened, "the manifest was opened for writing under its final name"
    assert [m["complete"] for _, m in renamed] == [False, False, False, True]  # claim, two cases, finish
    assert [sorted(m["cases"]) for _, m in renamed][-1] == ["a", "b"]
    assert all(src.name != MANIFEST and src.parent.absolute() == out.absolute() for src, _ in renamed)
    assert read_manifest(out, "demo").extra == {"done": True}


def test_atomic_dir_removes_what_a_killed_run_left_for_the_same_folder(tmp_path):
    """A SIGKILL cannot run the cleanup; the next run for the same folder removes its leftovers only."""
    from locseg_cli.io.atomic import TMP_PREFIX, atomic_dir

    left = [tmp_path / f"{TMP_PREFIX}0123abcd-model", tmp_path / f"{TMP_PREFIX}89abcdef-old-model"]
    other = [tmp_path / f"{TMP_PREFIX}0123abcd-model2", tmp_path / "keep"]
    for d in left + other:
        d.mkdir()
        (d / "f").write_text("x")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "card.json").write_text("{}")
    assert (tmp_path / "model" / "card.json").is_file()
    assert not any(d.exists() for d in left)
    assert all(d.exists() for d in other)
