"""report.md and a self-contained report.html rendered from the same markdown.

The markdown uses a small subset (headings, pipe tables, bullet lists, images, paragraphs, `code`,
**bold**), so a short converter suffices and no markdown package is needed. Images are embedded in
the HTML as base64 data URIs.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .tables import Table

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:0.9em}
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}code{background:#f3f3f3;padding:0 3px;font-size:0.85em}
img{max-width:100%;border:1px solid #ddd}li{font-size:0.9em}"""


def table_markdown(t: Table, base: Path) -> list[str]:
    """A pipe table, its note and, per row, the files its cells were read from (relative to `base`)."""
    import os

    lines = ["| " + " | ".join(t.header) + " |", "|" + "|".join("---" for _ in t.header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    lines.append("")
    if t.note:
        lines += [t.note, ""]
    lines.append(f"Sources of {t.key}:")
    lines.append("")
    for label, files in t.sources:
        rel = ", ".join(f"`{os.path.relpath(f, base)}`" for f in files)
        lines.append(f"- {label}: {rel}")
    lines.append("")
    return lines


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(markdown: str, base: Path, title: str) -> str:
    """Render the report's markdown subset; images under `base` become data URIs."""
    body: list[str] = []
    lines = markdown.splitlines()
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            body.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#{1,4}) (.*)$", line)
        image = _IMAGE.match(line.strip())
        if not line.strip():
            flush()
        elif heading:
            flush()
            n = len(heading.group(1))
            body.append(f"<h{n}>{_inline(heading.group(2))}</h{n}>")
        elif image:
            flush()
            src = base / image.group("src")
            data = base64.b64encode(src.read_bytes()).decode("ascii")
            body.append(f'<p><img alt="{html.escape(image.group("alt"))}" src="data:image/png;base64,{data}"></p>')
        elif line.startswith("|"):
            flush()
            header = _cells(line)
            i += 2  # the separator line
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in header) + "</tr></thead>"
                        "<tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                                             for r in rows) + "</tbody></table>")
            continue
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        else:
            para.append(line.strip())
        i += 1
    flush()
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
