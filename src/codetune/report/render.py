"""Markdown and self-contained HTML building blocks: tables, embedded images, collapsible code, the page."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328;
       max-width: 1200px; margin: 24px auto; padding: 0 24px; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: 6px; }
h2 { margin-top: 36px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
td.yes { color: #1a7f37; font-weight: bold; text-align: center; }
td.no { color: #cf222e; text-align: center; }
td.na { color: #8c959f; text-align: center; }
.note { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; border-radius: 6px; }
.sig { color: #1a7f37; font-weight: bold; }
.nosig { color: #9a6700; font-weight: bold; }
img { max-width: 100%; border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
details { border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; padding: 6px 10px; }
summary { cursor: pointer; font-weight: 600; }
.side { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 10px; }
.side h4 { margin: 8px 0 4px; }
pre { background: #f6f8fa; padding: 8px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap;
      word-break: break-word; font-size: 12.5px; margin: 0; }
.muted { color: #656d76; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline(text: object) -> str:
    """Escaped text whose `backquoted` words become <code>: the markdown documents' inline code, in HTML."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))


def md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(md_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], classes: Sequence[Sequence[str]] | None = None
) -> str:
    """An escaped HTML table; `classes[i][j]` optionally styles cell (i, j)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, c in enumerate(row):
            cls = classes[i][j] if classes and classes[i][j] else ""
            cells.append(f'<td class="{cls}">{esc(c)}</td>' if cls else f"<td>{esc(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>\n"


def img_tag(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def details(summary: str, inner_html: str) -> str:
    """A collapsible block; `summary` is plain text, `inner_html` already escaped."""
    return f"<details><summary>{esc(summary)}</summary>\n{inner_html}\n</details>\n"


def side_by_side(panels: Sequence[tuple[str, str]]) -> str:
    """Escaped text columns, one per (heading, text)."""
    cols = "".join(f"<div><h4>{esc(h)}</h4><pre>{esc(t) if t else '(empty)'}</pre></div>" for h, t in panels)
    return f'<div class="side">{cols}</div>'


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )
