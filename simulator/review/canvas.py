"""What a report panel is made of: a picture or a table, typed, and the helpers that make them.

A panel's payload is an :class:`Image` (an SVG, base64 for an ``<img>``) or an
:class:`Html` fragment (a table); the page tells them apart by type. The pictures are
written by ``review.svg``.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_POINTS = 2000                            # plotted points per curve, whatever the size
PLOT_ROWS = 50_000                          # partners drawn in the plots (stats.json uses all)


@dataclass(frozen=True)
class Image:
    """A drawn figure: its SVG, base64-encoded."""

    svg_base64: str


@dataclass(frozen=True)
class Html:
    """An HTML fragment (a table), escaped where it was built."""

    text: str


Payload = Image | Html


def image(svg: str) -> Image:
    """An SVG picture (``review.svg.render``), base64 for an <img>: its text stays text, set
    by the browser, sharp at any zoom."""
    return Image(base64.b64encode(svg.encode("utf-8")).decode("ascii"))


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def cell(v: object) -> str:
    """A table cell's text: a float to four significant digits, or whole with thousands
    separators from 1,000 on; an int with separators; None as n/a."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return format(v, ",.0f" if abs(v) >= 1000 else ".4g")
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def markdown_table(head: list[str], rows: list[list[object]]) -> list[str]:
    """The lines of a Markdown table, cells as :func:`html_table` shows them."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(cell(v) for v in r) + " |" for r in rows)]


def html_table(head: list[str], rows: list[list[object]]) -> Html:
    """A small HTML table (a panel may be one instead of a picture)."""
    td = lambda v: f"<td class='n'>{html.escape(cell(v))}</td>" if _number(v) else f"<td>{html.escape(cell(v))}</td>"
    # numbers right-aligned, and the heads of the columns that hold only numbers
    numeric = [bool(rows) and all(_number(r[i]) or r[i] == "" for r in rows) for i in range(len(head))]
    th = "".join(f"<th class='n'>{html.escape(h)}</th>" if n else f"<th>{html.escape(h)}</th>"
                 for h, n in zip(head, numeric))
    return Html(f"<table><tr>{th}</tr>" + "".join(f"<tr>{''.join(td(v) for v in r)}</tr>" for r in rows) + "</table>")


def sample(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row up to PLOT_ROWS, else an evenly spaced subset: plots don't need a million."""
    if len(frame) <= PLOT_ROWS:
        return frame
    return frame.iloc[np.linspace(0, len(frame) - 1, PLOT_ROWS).astype(np.int64)]
