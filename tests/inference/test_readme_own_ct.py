"""The README's "Use it on your own CT" commands run as shown, on tiny scans and runs."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from synthdata import make_case, write_dicom_series

from locseg_cli.app import main
from locseg_cli.io.nifti import save_volume

README = Path(__file__).resolve().parents[2] / "README.md"


def infer_commands() -> list[str]:
    """The `locseg infer` lines of the section's code blocks, without their comments."""
    text = README.read_text()
    section = text.split("\n## Use it on your own CT\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = [ln.split("#", 1)[0].strip() for block in blocks for ln in block.splitlines()]
    return [ln for ln in lines if ln.startswith("locseg infer")]


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
    for line in commands:
        argv = shlex.split(line)[1:] + ["--threads", "1"]
        out = Path(argv[argv.index("--out") + 1])
        if out.exists():  # two commands may name the same --out: each one's own output is checked
            shutil.rmtree(out)
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0, (line, capsys.readouterr().err)
        assert (out / "manifest.json").is_file() and list(out.glob("*.nii.gz")), line
