"""The on-disk contract: fingerprints, up-to-date skips, resume, atomic writes, locks, safe paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from locseg_cli.errors import LocsegError
from locseg_cli.io.atomic import atomic_path, safe_join, sweep_temporaries, validate_case_id, write_json
from locseg_cli.io.manifest import LOCK, MANIFEST, SCHEMA_VERSION, StageWriter, read_json, read_manifest


def _run(out, config, cases, inputs=None, force=False, calls=None):
    """A toy stage writing one text file per case; records which cases it actually computed."""
    calls = [] if calls is None else calls
    with StageWriter("toy", out, config, inputs or {}, force) as w:
        if w.up_to_date:
            return calls, False
        for cid, value in cases.items():
            cfp = w.case_fingerprint(value)
            if w.case_done(cid, cfp):
                continue
            calls.append(cid)
            with atomic_path(w.path(f"{cid}.txt")) as tmp:
                tmp.write_text(str(value))
            w.add_case(cid, {"out": f"{cid}.txt"}, {"value": value}, cfp)
        w.finish({"n": len(cases)})
    return calls, True


def test_up_to_date_then_config_change_redoes(tmp_path):
    out = tmp_path / "out"
    calls, did = _run(out, {"a": 1}, {"c1": 1, "c2": 2})
    assert did and calls == ["c1", "c2"]
    calls, did = _run(out, {"a": 1}, {"c1": 1, "c2": 2})
    assert not did and calls == []
    calls, did = _run(out, {"a": 2}, {"c1": 1, "c2": 2})
    assert did and calls == ["c1", "c2"]


def test_changed_case_input_redoes_only_that_case(tmp_path):
    out = tmp_path / "out"
    _run(out, {"a": 1}, {"c1": 1, "c2": 2})
    calls, did = _run(out, {"a": 1}, {"c1": 1, "c2": 3}, inputs={"data": (tmp_path / "data", "changed")})
    assert did and calls == ["c2"]


def test_force_redoes_everything(tmp_path):
    out = tmp_path / "out"
    _run(out, {"a": 1}, {"c1": 1})
    calls, did = _run(out, {"a": 1}, {"c1": 1}, force=True)
    assert did and calls == ["c1"]


def test_missing_output_file_is_recomputed(tmp_path):
    out = tmp_path / "out"
    _run(out, {"a": 1}, {"c1": 1, "c2": 2})
    (out / "c1.txt").unlink()
    calls, did = _run(out, {"a": 1}, {"c1": 1, "c2": 2})
    assert did and calls == ["c1"]


def test_interrupted_stage_resumes_and_is_not_complete(tmp_path):
    out = tmp_path / "out"

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with StageWriter("toy", out, {"a": 1}, {}) as w:
            cfp = w.case_fingerprint(1)
            with atomic_path(w.path("c1.txt")) as tmp:
                tmp.write_text("1")
            w.add_case("c1", {"out": "c1.txt"}, {}, cfp)
            raise Boom
    assert not read_json(out / MANIFEST)["complete"]
    with pytest.raises(LocsegError, match="did not finish"):
        read_manifest(out, "toy")
    assert not (out / LOCK).exists()
    calls, did = _run(out, {"a": 1}, {"c1": 1, "c2": 2})
    assert calls == ["c2"]
    assert read_manifest(out, "toy").complete


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "vol.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_leaves_only_a_temporary_that_is_swept(tmp_path):
    code = ("import os,sys; from locseg_cli.io.atomic import atomic_path\n"
            f"with atomic_path(r'{tmp_path / 'x.bin'}') as t:\n"
            "    t.write_bytes(b'partial'); os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    assert not (tmp_path / "x.bin").exists()
    leftovers = list(tmp_path.iterdir())
    assert leftovers and all(p.name.startswith(".tmp-") for p in leftovers)
    assert sweep_temporaries(tmp_path) == len(leftovers)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", ".hidden", "a b", "x..y", "c:d"])
def test_invalid_case_ids_rejected(bad):
    with pytest.raises(LocsegError, match="invalid case id"):
        validate_case_id(bad)


@pytest.mark.parametrize("good", ["case_001", "img0001", "amos_0005", "case-1.2"])
def test_valid_case_ids(good):
    assert validate_case_id(good) == good


def test_safe_join_refuses_escape(tmp_path):
    assert safe_join(tmp_path, "a", "b.txt") == (tmp_path / "a" / "b.txt").resolve()
    with pytest.raises(LocsegError, match="escapes"):
        safe_join(tmp_path, "..", "x")
    with pytest.raises(LocsegError, match="escapes"):
        safe_join(tmp_path, "/etc/passwd")


def test_manifest_from_newer_schema_is_refused(tmp_path):
    out = tmp_path / "out"
    _run(out, {"a": 1}, {"c1": 1})
    data = read_json(out / MANIFEST)
    data["schema"] = SCHEMA_VERSION + 1
    write_json(out / MANIFEST, data)
    with pytest.raises(LocsegError, match="newer than this locseg"):
        read_manifest(out, "toy")


def test_manifest_case_id_escaping_is_refused(tmp_path):
    out = tmp_path / "out"
    _run(out, {"a": 1}, {"c1": 1})
    data = read_json(out / MANIFEST)
    data["cases"]["../../etc"] = data["cases"].pop("c1")
    write_json(out / MANIFEST, data)
    with pytest.raises(LocsegError, match="invalid case id"):
        read_manifest(out, "toy")


def test_second_writer_is_refused_while_first_holds_the_lock(tmp_path):
    out = tmp_path / "out"
    with StageWriter("toy", out, {}, {}):
        with pytest.raises(LocsegError, match="another locseg run"):
            StageWriter("toy", out, {}, {}).__enter__()


def test_stale_lock_of_dead_process_is_recovered(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (out / LOCK).write_text(f"{socket.gethostname()}:{proc.stdout.strip()}")
    calls, did = _run(out, {"a": 1}, {"c1": 1})
    assert did and calls == ["c1"]
    assert not (out / LOCK).exists()


def test_refuses_foreign_nonempty_folder_and_other_stage(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(LocsegError, match="not empty"):
        _run(out, {}, {"c1": 1})
    assert sorted(os.listdir(out)) == ["precious.txt"]
    other = tmp_path / "other"
    _run(other, {}, {"c1": 1})
    with pytest.raises(LocsegError, match="holds a `toy` output"):
        StageWriter("train", other, {}, {}).__enter__()


def test_out_inside_input_is_refused(tmp_path):
    with pytest.raises(LocsegError, match="must not be inside"):
        StageWriter("toy", tmp_path / "data" / "out", {}, {"data": (tmp_path / "data", "x")})
