"""The README's "Use it on your own CT" commands run as shown, on tiny scans and runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from readme import readme_commands
from synthdata import make_case, write_dicom_series

from locseg_cli.app import main
from locseg_cli.io.nifti import save_volume


def infer_commands() -> list[list[str]]:
    """The `locseg infer` commands of the README's inference subsection."""
    return [c for c in readme_commands("Use it on your own CT", "Inference on scans as you have them")
            if c[0] == "infer"]


def test_every_infer_command_of_the_section_runs(run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pydicom")
    commands = infer_commands()
    assert len(commands) >= 5
    (tmp_path / "runs").mkdir()
    shutil.copytree(run / "run", tmp_path / "runs/fold0")
    shutil.copytree(run / "run2", tmp_path / "runs/fold1")
    aff = np.diag([1.5, 1.5, 2.0, 1.0])
    for i, name in enumerate(("scan.nii.gz", "scans/a.nii.gz", "scans/b.nii.gz")):
        img, _ = make_case((24, 20, 18), seed=20 + i)
        save_volume(tmp_path / name, img.transpose(2, 1, 0), aff, dtype=np.int16)
    for i, name in enumerate(("series1", "series2")):
        img, _ = make_case((24, 20, 18), seed=30 + i)
        write_dicom_series(tmp_path / "dicom" / name, img.transpose(2, 1, 0).astype(np.float32), aff)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = [*command, "--threads", "1"]
        line = " ".join(command)
        out = Path(argv[argv.index("--out") + 1])
        if out.exists():  # two commands may name the same --out: each one's own output is checked
            shutil.rmtree(out)
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0, (line, capsys.readouterr().err)
        assert (out / "manifest.json").is_file() and list(out.glob("*.nii.gz")), line
