"""Disk space: stages estimate their output and refuse up front, before writing anything."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest
from test_bad_inputs import run_inprocess
from world import world_fixture, world_template_fixture  # noqa: F401  (fixtures)

from locseg_cli.errors import LocsegError
from locseg_cli.io.space import ensure_free_space, existing_bytes, human_bytes

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def disk_free(monkeypatch):
    """Pretend the disk has `free` bytes left; returns a setter."""
    def set_free(free: int) -> None:
        monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - free, free))
    return set_free


def test_ensure_free_space_refuses_with_one_line(tmp_path, disk_free):
    disk_free(1000)
    with pytest.raises(LocsegError) as exc:
        ensure_free_space(tmp_path / "new" / "out", 5 * 2**20, "3 predictions")
    assert str(exc.value) == f"{tmp_path / 'new' / 'out'}: not enough disk space for 3 predictions: " \
                             f"needs about 5.5 MiB, 1000 B free"
    ensure_free_space(tmp_path / "out", 900, "small")  # 990 bytes with the margin: fits


def test_bytes_already_in_out_are_not_counted_twice(tmp_path, disk_free):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.bin").write_bytes(b"x" * 4000)
    assert existing_bytes(out) == 4000
    disk_free(1000)
    ensure_free_space(out, 4500, "a rerun")  # (4500 - 4000) * 1.1 = 550 bytes needed
    with pytest.raises(LocsegError, match="needs about 1.6 KiB, 1000 B free"):
        ensure_free_space(out, 5500, "a rerun")


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1024, 3 * 2**30)] == ["0 B", "1023 B", "1.0 KiB", "3.0 GiB"]


@pytest.mark.parametrize("stage", ["preprocess", "infer"])
def test_stage_refuses_before_writing(stage, world, disk_free, capsys):
    out = world / "out"
    argv = {"preprocess": ["preprocess", "--data", str(world / "raw"), "--spacing", "2,2,2", "--folds", "2"],
            "infer": ["infer", "--run", str(world / "run"), "--data", str(world / "raw"), "--threads", "1"]}[stage]
    disk_free(10_000)
    code, err = run_inprocess(argv + ["--out", str(out)], capsys)
    what = {"preprocess": "3 preprocessed cases", "infer": "3 predictions"}[stage]
    assert code == 2 and err.startswith(f"error: {out}: not enough disk space for {what}: needs about ")
    assert err.rstrip().endswith("KiB, 9.8 KiB free") and len(err.splitlines()) == 1
    assert not out.exists()
    disk_free(10**9)
    code, err = run_inprocess(argv + ["--out", str(out)], capsys)
    assert code == 0 and (out / "manifest.json").is_file()


FILLS_AT = {"preprocess": 9, "infer": 5, "train": 4}  # the os.replace (a finished file) that meets a full disk


@pytest.mark.parametrize("stage", list(FILLS_AT))
def test_disk_filling_mid_stage_is_one_line_and_keeps_what_was_finished(stage, world, monkeypatch, capsys):
    """The estimate passed, yet the disk fills (another job wrote meanwhile): ENOSPC on a later file."""
    import errno
    import json
    import os

    from test_interruptions import assert_no_partial_files

    from locseg_cli.io import atomic

    out = world / "out"
    argv = {"preprocess": ["preprocess", "--data", str(world / "raw"), "--spacing", "2,2,2", "--folds", "2"],
            "infer": ["infer", "--run", str(world / "run"), "--data", str(world / "raw"), "--threads", "1"],
            "train": ["train", "--pre", str(world / "pre"), "--features", "4,4,8,8,16,4", "--patch-size", "16,16,32",
                      "--batch-size", "2", "--epochs", "1", "--iterations-per-epoch", "4", "--val-every", "0",
                      "--checkpoint-every", "1", "--workers", "0", "--threads", "1", "--fold", "-1"]}[stage]
    calls = {"n": 0}
    replace = os.replace

    def full_disk(src, dst):
        calls["n"] += 1
        if calls["n"] >= FILLS_AT[stage]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    code, err = run_inprocess(argv + ["--out", str(out)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {out}: the disk filled up while ")
    assert "(No space left on device)" in err and "free space and rerun the same command" in err
    assert "/.tmp-" not in err  # names the file, not its temporary
    assert_no_partial_files(out)  # no temporary, no half file, not marked finished
    kept = json.loads((out / "manifest.json").read_text())["cases"]
    assert stage == "train" or (kept and f"the {len(kept)} finished case(s) are kept" in err)
    before = {p: p.read_bytes() for c in kept.values() for p in (out / f for f in c["files"].values())}
    monkeypatch.setattr(atomic.os, "replace", replace)  # space freed
    code, err = run_inprocess(argv + ["--out", str(out)], capsys)
    assert code == 0, err
    assert all(p.read_bytes() == b for p, b in before.items())  # the earlier output is intact
    assert json.loads((out / "manifest.json").read_text())["complete"]
