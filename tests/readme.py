"""The `locseg` commands shown in a README section, for tests that run them as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_text(section: str, subsection: str | None = None, path: Path = README) -> str:
    """The body of `## section` (and of `### subsection` inside it) of a markdown file."""
    body = path.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    if subsection is not None:
        body = body.split(f"\n### {subsection}\n", 1)[1].split("\n### ", 1)[0]
    return body


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def readme_commands(section: str, subsection: str | None = None) -> list[list[str]]:
    """The `locseg ...` lines of the bash blocks there, comments cut, as argument lists (without `locseg`)."""
    lines = [ln.split("#", 1)[0].strip() for block in code_blocks(readme_text(section, subsection), "bash")
             for ln in block.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith("locseg ")]
