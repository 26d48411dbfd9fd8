"""A non-editable wheel is a complete `locseg`: it carries the presets and runs the chain away from the clone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "README.md", "locseg_cli", "presets")
TINY_TRAIN = ("--features 4,4,8,8,16,4 --patch-size 16,16,32 --batch-size 2 --epochs 1 --iterations-per-epoch 3 "
              "--val-every 0 --workers 0 --threads 1 --fold 0 --device cpu").split()


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _build_wheel(tmp: Path) -> Path:
    """Build from a copy of the sources, so the build writes nothing into the clone."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(item, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
          str(tmp / "dist"), str(src)], tmp, dict(os.environ))
    return next((tmp / "dist").glob("locseg-*.whl"))


def _venv_with_wheel(tmp: Path, wheel: Path) -> Path:
    """A fresh venv holding the wheel; torch, monai & co. come from this interpreter's site-packages
    through a .pth line (nothing is downloaded, and that folder's own .pth files, the editable
    install's among them, are not run)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
         tmp, dict(os.environ))
    return venv


def test_wheel_runs_the_chain_outside_the_clone(tmp_path: Path) -> None:
    """Build, install into a fresh venv, then synth -> preprocess (a preset) -> train -> infer from a
    folder outside the clone. About 35 s on 2 shared CPU cores
    (the wheel builds in ~5 s), so not marked slow."""
    venv = _venv_with_wheel(tmp_path, _build_wheel(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}:/usr/bin:/bin")
    where = _run([str(venv / "bin" / "python"), "-c",
                  "import locseg_cli, locseg_cli.config as c; print(locseg_cli.__file__); print(c.PRESET_ROOT)"],
                 work, env).split()
    assert all(Path(p).is_relative_to(venv) for p in where), where  # the wheel's code and presets, not the clone's
    locseg = str(venv / "bin" / "locseg")
    _run([locseg, "synth", "--out", "raw", "--cases", "4", "--spacing", "6,6,6", "--workers", "0",
          "--montage-cases", "0"], work, env)
    _run([locseg, "preprocess", "--data", "raw", "--out", "pre", "--preset", "experiments/quick",
          "--spacing", "6,6,6", "--folds", "2"], work, env)
    _run([locseg, "train", "--pre", "pre", "--out", "run", "--model", "locbam", *TINY_TRAIN], work, env)
    _run([locseg, "infer", "--run", "run", "--data", "raw", "--subset", "val", "--threads", "1", "--device", "cpu",
          "--out", "pred"], work, env)
    assert len(list((work / "pred").glob("*.nii.gz"))) == 2
