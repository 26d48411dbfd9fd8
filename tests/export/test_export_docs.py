"""The README's export commands and docs/export.md's onnxruntime example run as written.

The commands are read from the README's "Use it on your own CT" -> "Export" subsection and run in a
folder holding a tiny trained run at the path they name; the example is executed as it stands, and its
hand-built location input must equal locseg's own for the same patch.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _subsection(text: str, section: str, subsection: str) -> str:
    """The body of `### subsection` inside `## section` of a markdown text."""
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split(f"\n### {subsection}\n", 1)[1].split("\n### ", 1)[0]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def readme_export_commands() -> list[str]:
    body = _subsection((ROOT / "README.md").read_text(), "Use it on your own CT", "Export")
    return [line.strip() for block in _blocks(body, "bash") for line in block.splitlines()
            if line.strip().startswith("locseg ")]


def test_readme_export_commands_and_the_docs_example_run(trained_run, tmp_path, monkeypatch):
    from locseg_cli.app import main
    from locseg_cli.location import location_channels, location_vectors

    commands = readme_export_commands()
    assert len(commands) >= 2 and all(c.split()[1] == "export" for c in commands)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args = shlex.split(command)[1:]
        run = Path(args[args.index("--run") + 1])
        if not run.exists():
            run.parent.mkdir(parents=True, exist_ok=True)
            run.symlink_to(trained_run, target_is_directory=True)
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 0, command
        assert (tmp_path / args[args.index("--out") + 1] / "card.json").is_file()

    (example,) = _blocks((ROOT / "docs" / "export.md").read_text(), "python")
    scope: dict = {}
    exec(compile(example, "docs/export.md", "exec"), scope)
    patch = scope["patch"]
    ours = location_channels(location_vectors(scope["volume"].shape), scope["start"], patch)
    np.testing.assert_allclose(scope["location"], ours, atol=1e-6)
    assert scope["segmentation"].shape == tuple(patch)
    assert set(np.unique(scope["segmentation"])) <= {0, 1, 2}
