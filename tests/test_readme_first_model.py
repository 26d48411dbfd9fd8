"""Every command of the README's "Use it on your own CT" -> "From your CT to a model" runs as written (on a tiny dataset, with options
that shrink the network and the number of iterations appended: the last occurrence of an option wins)."""

from __future__ import annotations

import pytest
from readme import readme_commands

SHRINK = {
    "preprocess": "--folds 2",
    "train": "--features 4,4,8,8,16,4 --batch-size 2 --epochs 1 --iterations-per-epoch 2 --val-every 0 --workers 0 "
             "--threads 1 --device cpu --locbam-reduction 4",
    "infer": "--threads 1 --device cpu",
}


def first_model_commands() -> list[list[str]]:
    return readme_commands("Use it on your own CT", "From your CT to a model")


def test_the_section_shows_the_design_card_sequence():
    commands = [" ".join(c) for c in first_model_commands()]
    assert any(c.startswith("preprocess") and "--spacing lowres" in c for c in commands)
    assert any(c.startswith("train") and "--model locbam" in c for c in commands)
    assert any("--init-from" in c for c in commands)


def test_every_command_runs_as_written(tmp_path, monkeypatch):
    from synthdata import write_dataset

    from locseg_cli.app import main

    write_dataset(tmp_path / "my-ct", n=4, shape=(40, 36, 36))
    monkeypatch.chdir(tmp_path)
    for argv in first_model_commands():
        extra = SHRINK.get(argv[0], "").split()
        with pytest.raises(SystemExit) as done:
            main([*argv, *extra])
        assert done.value.code == 0, " ".join(argv)
    assert len(list((tmp_path / "pred").glob("*.nii.gz"))) == 4
    assert (tmp_path / "runs/tuned/manifest.json").is_file()
