"""The README's export commands and docs/export.md's onnxruntime example run as written.

The commands are read from the README's "Use it on your own CT" -> "Export" subsection and run in a
folder holding a tiny trained run at the path they name; the example is executed as it stands, and its
hand-built location input must equal locseg's own for the same patch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from readme import code_blocks, readme_commands

ROOT = Path(__file__).resolve().parents[2]


def readme_export_commands() -> list[list[str]]:
    return readme_commands("Use it on your own CT", "Export")


def test_readme_export_commands_and_the_docs_example_run(trained_run, tmp_path, monkeypatch):
    from locseg_cli.app import main
    from locseg_cli.location import location_channels, location_vectors

    commands = readme_export_commands()
    assert len(commands) >= 2 and all(c[0] == "export" for c in commands)
    monkeypatch.chdir(tmp_path)
    for args in commands:
        run = Path(args[args.index("--run") + 1])
        if not run.exists():
            run.parent.mkdir(parents=True, exist_ok=True)
            run.symlink_to(trained_run, target_is_directory=True)
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 0, " ".join(args)
        assert (tmp_path / args[args.index("--out") + 1] / "card.json").is_file()

    (example,) = code_blocks((ROOT / "docs" / "export.md").read_text(), "python")
    scope: dict = {}
    exec(compile(example, "docs/export.md", "exec"), scope)
    patch = scope["patch"]
    ours = location_channels(location_vectors(scope["volume"].shape), scope["start"], patch)
    np.testing.assert_allclose(scope["location"], ours, atol=1e-6)
    assert scope["segmentation"].shape == tuple(patch)
    assert set(np.unique(scope["segmentation"])) <= {0, 1, 2}
