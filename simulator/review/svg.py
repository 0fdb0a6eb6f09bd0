"""Figures written as SVG text: panels of lines, steps, markers, bars, stairs and shaded
spans over linear, date or category axes, with ticks, titles, axis labels and legends.

The report draws a dozen small figures a run. matplotlib laid them out in Python (about
1.8 s of a 10k run, and 0.5 s more to import it); here a figure is a string built from
the data's arrays, and the browser sets the text. A :class:`Panel` collects marks in data
coordinates; :func:`render` sizes every panel's margins from its labels and writes the
picture, the same bytes every run. Text widths are estimated (``CHAR`` of the font size a
character, a little wider than a sans-serif's average), and a title or legend too long for
its room is set smaller rather than clipped; ``tests/test_report_layout.py`` checks in
Chromium that no text leaves its picture.
"""
from __future__ import annotations

import datetime
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dates import DAY

FONT = 11                    # px: titles and axis labels; ticks and legends a little smaller
TICK_FONT = 9.5
CHAR = 0.62                  # estimated width of a character, in font sizes
PAD = 6                      # px around a panel's texts
LEGEND_LINE = 1.45           # a legend's row height, in font sizes
CORNERS = ("upper left", "upper right", "lower left", "lower right")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
EPOCH = np.datetime64("1970-01-01", "D")


def _f(v: float) -> str:
    """A coordinate in pixels, one decimal (the same bytes on every platform)."""
    return f"{v:.1f}".replace("-0.0", "0.0")


def _text_width(text: str, size: float) -> float:
    return len(text) * CHAR * size


def tick_text(v: float) -> str:
    """A tick's text: whole numbers from 10,000 on with separators, else 4 significant digits."""
    if v == 0:
        return "0"
    if abs(v) >= 1e4 and float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.4g}"


def nice_ticks(lo: float, hi: float, most: int = 6, integer: bool = False) -> np.ndarray:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) from ``lo`` to ``hi``, at most
    ``most`` + 1 of them; whole numbers only with ``integer``."""
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return np.array([lo])
    raw = span / max(most, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    return np.round(np.arange(first, hi + step * 1e-9, step), 10)


def _date_ticks(lo: float, hi: float) -> tuple[np.ndarray, list[str]]:
    """Ticks of a date axis (days since 1970): month starts, a few months apart, over long
    spans; round numbers of days over short ones."""
    start, end = (EPOCH + int(math.floor(lo)) * DAY), (EPOCH + int(math.ceil(hi)) * DAY)
    months = np.arange(start.astype("datetime64[M]") + 1, end.astype("datetime64[M]") + 1)
    if months.size >= 2:
        step = next(k for k in (1, 2, 3, 6, 12, 24, 60) if months.size / k <= 7)
        chosen = months[::step]
        return (chosen.astype("datetime64[D]") - EPOCH) / DAY, [str(m) for m in chosen]
    at = nice_ticks(lo, hi, 4, integer=True)
    return at, [str(EPOCH + int(a) * DAY) for a in at]


def as_numbers(values) -> tuple[np.ndarray, bool]:
    """Values as floats, and whether they were dates (then days since 1970)."""
    a = np.asarray(values)
    if a.dtype == object and a.size and all(isinstance(v, (datetime.date, np.datetime64)) for v in a.flat):
        a = a.astype("datetime64[us]")                       # Timestamps, dates
    if np.issubdtype(a.dtype, np.datetime64):
        return (a.astype("datetime64[D]") - EPOCH) / DAY, True
    return a.astype(float), False


@dataclass
class _Mark:
    kind: str                     # line, points, bars, stairs, span, rule
    args: dict


@dataclass
class Entry:
    """A legend's row: its text and the swatch that draws like the mark it names."""

    text: str
    color: str
    swatch: str = "line"          # line, patch, or a marker's shape
    dash: str | None = None
    hollow: bool = False
    line: bool = True             # a marker's swatch: on a line, or alone
    opacity: float = 1.0          # a patch's


@dataclass
class Panel:
    """One plotting area of ``width`` x ``height`` px (texts included), holding marks in
    data coordinates. ``xcats``/``ycats`` make an axis of categories (positions 0, 1, ...;
    the first y category on top); ``xlim``/``ylim`` fix a limit (None: the data's).
    ``legend``: where the legend goes: ``best`` (the corner inside that hides the fewest
    points of the lines), a corner (``upper left``, ``upper right``, ``lower left``,
    ``lower right``), ``right`` or ``below`` outside (taking room from the panel), or None."""

    width: float = 420
    height: float = 300
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xcats: Sequence[str] | None = None
    ycats: Sequence[str] | None = None
    xlim: tuple[float | None, float | None] = (None, None)
    ylim: tuple[float | None, float | None] = (None, None)
    xrotate: int = 0              # x tick labels: 0, 45 or 90 degrees
    xticks: int = 6               # at most this many x ticks (about)
    yaxis: bool = True            # False: no y ticks (a small multiple's shape only)
    integer_x: bool = False
    legend: str | None = "best"
    legend_columns: int = 1
    frame: bool = False           # a box all round, not only the left and bottom axes
    title_size: float = FONT
    marks: list[_Mark] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    dates: bool = False

    # ------------------------------------------------------------------ marks
    def _x(self, x) -> np.ndarray:
        v, dated = as_numbers(x)
        self.dates |= dated
        return v

    def line(self, x, y, color: str, *, label: str | None = None, width: float = 1.5, dash: str | None = None,
             step: bool = False, marker: str | None = None, hollow: bool = False) -> None:
        """A polyline through (x, y) (NaN: a gap); ``step`` holds each value until the next
        x (a Kaplan-Meier curve); ``marker`` marks every point too."""
        x, y = self._x(x), np.asarray(y, dtype=float)
        self.marks.append(_Mark("line", dict(x=x, y=y, color=color, width=width, dash=dash, step=step)))
        if marker:
            self.marks.append(_Mark("points", dict(x=x, y=y, color=color, shape=marker, hollow=hollow)))
        if label:
            self.entries.append(Entry(label, color, marker or "line", dash, hollow))

    def points(self, x, y, color: str, shape: str = "o", *, hollow: bool = False, label: str | None = None) -> None:
        """Markers: ``o`` circle, ``s`` square, ``^`` triangle, ``x`` cross, ``|`` tick."""
        self.marks.append(_Mark("points", dict(x=self._x(x), y=np.asarray(y, dtype=float), color=color, shape=shape,
                                               hollow=hollow)))
        if label:
            self.entries.append(Entry(label, color, shape, None, hollow, line=False))

    def bars(self, at, length, color: str | Sequence[str], *, base: float = 0.0, thick: float = 0.8,
             horizontal: bool = False, err=None, label: str | None = None) -> None:
        """Bars at positions ``at`` (category positions, or x values) from ``base`` by
        ``length``; ``err``: a half-length error bar at each bar's end."""
        at = np.asarray(at, dtype=float)
        colors = [color] * at.size if isinstance(color, str) else list(color)
        self.marks.append(_Mark("bars", dict(at=at, length=np.asarray(length, dtype=float), base=base, thick=thick,
                                             horizontal=horizontal, colors=colors,
                                             err=None if err is None else np.asarray(err, dtype=float))))
        if label:
            self.entries.append(Entry(label, colors[0] if colors else "#000", "patch"))

    def stairs(self, edges, heights, color: str, *, opacity: float = 0.5, label: str | None = None) -> None:
        """A filled histogram: ``heights`` between consecutive ``edges``, from 0."""
        self.marks.append(_Mark("stairs", dict(edges=np.asarray(edges, dtype=float),
                                               heights=np.nan_to_num(np.asarray(heights, dtype=float)),
                                               color=color, opacity=opacity)))
        if label:
            self.entries.append(Entry(label, color, "patch", opacity=opacity))

    def span(self, lo, hi, color: str, *, label: str | None = None) -> None:
        """A band over the x range lo..hi, the panel's full height."""
        (a, b) = self._x([lo, hi])
        self.marks.append(_Mark("span", dict(lo=a, hi=b, color=color)))
        if label:
            self.entries.append(Entry(label, color, "patch"))

    def rule(self, value, color: str = "#000", *, vertical: bool = True, dash: str | None = "4,3",
             width: float = 1.0, label: str | None = None) -> None:
        """A line across the panel at x = ``value`` (``vertical``) or y = ``value``."""
        v = float(self._x([value])[0]) if vertical else float(value)
        self.marks.append(_Mark("rule", dict(value=v, color=color, vertical=vertical, dash=dash, width=width)))
        if label:
            self.entries.append(Entry(label, color, "line", dash))

    # ------------------------------------------------------------------ limits
    def _extent(self, axis: str) -> tuple[float, float, bool]:
        """(lo, hi) of the marks on ``axis``, and whether bars sit on it (no padding at
        their base)."""
        values, based = [], False
        for m in self.marks:
            a = m.args
            if m.kind in ("line", "points"):
                values.append(a[axis])
            elif m.kind == "bars":
                along = (axis == "x") == a["horizontal"]          # the bars' lengths run along this axis
                if along:
                    ends = a["base"] + a["length"]
                    err = a["err"] if a["err"] is not None else 0
                    values += [np.atleast_1d(a["base"]), ends + err, ends - err]
                    based = True
                else:
                    values += [a["at"] - a["thick"] / 2, a["at"] + a["thick"] / 2]
            elif m.kind == "stairs":
                values.append(a["edges"] if axis == "x" else np.r_[0.0, a["heights"]])
            elif m.kind == "span" and axis == "x":
                values.append(np.array([a["lo"], a["hi"]]))
            elif m.kind == "rule" and a["vertical"] == (axis == "x"):
                values.append(np.array([a["value"]]))
        v = np.concatenate([np.ravel(x) for x in values]) if values else np.zeros(0)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return 0.0, 1.0, based
        return float(v.min()), float(v.max()), based

    def _scale(self, axis: str) -> "_Axis":
        cats = self.xcats if axis == "x" else self.ycats
        fixed = self.xlim if axis == "x" else self.ylim
        if cats is not None:
            n = len(cats)
            return _Axis(-0.5, n - 0.5, np.arange(n, dtype=float), [str(c) for c in cats], flip=axis == "y")
        lo, hi, based = self._extent(axis)
        if hi - lo <= 0:
            pad = 15.0 if (axis == "x" and self.dates) else (abs(hi) * 0.1 or 0.5)
            lo, hi = lo - pad, hi + pad
        elif not based:
            pad = (hi - lo) * 0.04
            lo, hi = lo - pad, hi + pad
        else:
            pad = (hi - lo) * 0.04                               # room past the bars' ends only
            lo, hi = (lo if lo >= 0 else lo - pad), (hi if hi <= 0 else hi + pad)
        lo = fixed[0] if fixed[0] is not None else lo
        hi = fixed[1] if fixed[1] is not None else hi
        if axis == "x" and self.dates:
            at, text = _date_ticks(lo, hi)
        else:
            at = nice_ticks(lo, hi, self.xticks if axis == "x" else 5, self.integer_x and axis == "x")
            text = [tick_text(a) for a in at]
        keep = (at >= lo - 1e-9 * abs(hi - lo)) & (at <= hi + 1e-9 * abs(hi - lo))
        return _Axis(lo, hi, at[keep], [t for t, k in zip(text, keep) if k])


@dataclass
class _Axis:
    lo: float
    hi: float
    ticks: np.ndarray
    labels: list[str]
    flip: bool = False            # categories on a y axis: the first on top

    def to(self, v, a: float, b: float) -> np.ndarray:
        """Data values to pixels between a (at lo) and b (at hi)."""
        if self.flip:
            a, b = b, a
        return a + (np.asarray(v, dtype=float) - self.lo) / ((self.hi - self.lo) or 1.0) * (b - a)


def _fit(text: str, room: float, size: float) -> float:
    """The font size at which ``text`` fits ``room`` px: ``size``, or smaller (not below 6)."""
    need = _text_width(text, size)
    return size if need <= room else max(6.0, size * room / max(need, 1.0))


def _text(x: float, y: float, text: str, size: float, anchor: str = "middle", rotate: int = 0) -> str:
    turn = f' transform="rotate({-rotate} {_f(x)} {_f(y)})"' if rotate else ""
    return (f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size:.1f}" text-anchor="{anchor}"{turn}>'
            f"{html.escape(text)}</text>")


def _dash(dash: str | None) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _marker(shape: str, x: float, y: float, color: str, hollow: bool, r: float = 3.2) -> str:
    fill = "#fff" if hollow else color
    if shape == "o":
        return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{r:.1f}" fill="{fill}" stroke="{color}"/>'
    if shape == "s":
        return f'<rect x="{_f(x - r)}" y="{_f(y - r)}" width="{2 * r:.1f}" height="{2 * r:.1f}" fill="{fill}" stroke="{color}"/>'
    if shape == "^":
        return (f'<path d="M{_f(x)},{_f(y - r * 1.2)}L{_f(x + r)},{_f(y + r * 0.8)}L{_f(x - r)},{_f(y + r * 0.8)}Z" '
                f'fill="{fill}" stroke="{color}"/>')
    if shape == "x":
        return (f'<path d="M{_f(x - r)},{_f(y - r)}L{_f(x + r)},{_f(y + r)}M{_f(x - r)},{_f(y + r)}L{_f(x + r)},'
                f'{_f(y - r)}" stroke="{color}" stroke-width="1.6"/>')
    if shape == "|":
        return f'<path d="M{_f(x)},{_f(y - 2 * r)}V{_f(y + 2 * r)}" stroke="{color}" stroke-width="1.4"/>'
    raise ValueError(f"no marker {shape!r}: o, s, ^, x or |")


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    """An SVG path through the points, NaN breaking it."""
    out, pen = [], False
    for x, y in zip(xs.tolist(), ys.tolist()):
        if math.isnan(x) or math.isnan(y):
            pen = False
            continue
        out.append(f"{'L' if pen else 'M'}{_f(x)},{_f(y)}")
        pen = True
    return "".join(out)


def _along(x: np.ndarray, y: np.ndarray, line: bool, every: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``every`` px along a polyline (a line's segments hide under a legend too),
    or the points themselves."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if not line or x.size < 2:
        return x, y
    run = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    at = np.arange(0.0, run[-1] + every, every)
    return np.interp(at, run, x), np.interp(at, run, y)


def _legend_layout(entries: list[Entry], size: float, columns: int) -> tuple[list[float], int, float, float]:
    """A legend's column widths, rows, width and height (px), entries filling columns in turn."""
    widths = [26 + _text_width(e.text, size) for e in entries]
    rows = -(-len(entries) // columns)
    col_width = [max(widths[c * rows:(c + 1) * rows] or [0]) for c in range(columns)]
    return col_width, rows, sum(col_width) + 8 * columns, rows * (size * LEGEND_LINE) + 6


def _legend_size(entries: list[Entry], size: float, columns: int) -> tuple[float, float]:
    return _legend_layout(entries, size, columns)[2:]


def _legend(entries: list[Entry], x: float, y: float, size: float, columns: int) -> list[str]:
    """A legend's SVG at (x, y) (top left)."""
    col_width, rows, width, height = _legend_layout(entries, size, columns)
    line = size * LEGEND_LINE
    out = [f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(width)}" height="{_f(height)}" fill="#fff" '
           f'fill-opacity="0.85" stroke="#ccc"/>']
    for i, e in enumerate(entries):
        c, r = divmod(i, rows)
        left, mid = x + 6 + sum(col_width[:c]) + 8 * c, y + 3 + (r + 0.5) * line
        if e.swatch == "patch":
            out.append(f'<rect x="{_f(left)}" y="{_f(mid - 4)}" width="16" height="8" fill="{e.color}" '
                       f'fill-opacity="{e.opacity}"/>')
        else:
            if e.line:
                out.append(f'<path d="M{_f(left)},{_f(mid)}h18" stroke="{e.color}" stroke-width="1.5"{_dash(e.dash)}/>')
            if e.swatch != "line":
                out.append(_marker(e.swatch, left + 9, mid, e.color, e.hollow))
        out.append(_text(left + 22, mid + size * 0.35, e.text, size, "start"))
    return out


@dataclass(frozen=True)
class _Area:
    """A panel's plot area in pixels (y0 its top) and its data-to-pixel maps."""

    x0: float
    x1: float
    y0: float
    y1: float
    px: Callable[[Any], np.ndarray]
    py: Callable[[Any], np.ndarray]


def _span(a: dict, at: _Area) -> list[str]:
    lo, hi = sorted(at.px([a["lo"], a["hi"]]).tolist())
    return [f'<rect x="{_f(lo)}" y="{_f(at.y0)}" width="{_f(hi - lo)}" height="{_f(at.y1 - at.y0)}" '
            f'fill="{a["color"]}"/>']


def _stairs(a: dict, at: _Area) -> list[str]:
    xs, hs = at.px(a["edges"]), at.py(a["heights"])
    base = float(at.py([0.0])[0])
    d = f"M{_f(xs[0])},{_f(base)}" + "".join(f"V{_f(h)}H{_f(x)}" for h, x in zip(hs.tolist(), xs[1:].tolist()))
    return [f'<path d="{d}V{_f(base)}Z" fill="{a["color"]}" fill-opacity="{a["opacity"]}"/>']


def _bars(a: dict, at: _Area) -> list[str]:
    """Bars, drawn along x (``horizontal``) or y, and their error bars."""
    across, along = (at.py, at.px) if a["horizontal"] else (at.px, at.py)
    centre = across(a["at"])
    half = abs(float(across([a["thick"]])[0] - across([0.0])[0])) / 2
    start, end = along(np.full(a["at"].size, a["base"], dtype=float)), along(a["base"] + a["length"])
    out = []
    for c, s, e, color in zip(centre.tolist(), start.tolist(), end.tolist(), a["colors"]):
        lo, hi = min(s, e), max(s, e)
        x, y, w, h = (lo, c - half, hi - lo, 2 * half) if a["horizontal"] else (c - half, lo, 2 * half, hi - lo)
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="{color}"/>')
    if a["err"] is not None:
        ends = a["base"] + a["length"]
        for c, lo, hi in zip(centre.tolist(), along(ends - a["err"]).tolist(), along(ends + a["err"]).tolist()):
            d = (f"M{_f(lo)},{_f(c)}H{_f(hi)}M{_f(lo)},{_f(c - 2)}v4M{_f(hi)},{_f(c - 2)}v4" if a["horizontal"]
                 else f"M{_f(c)},{_f(lo)}V{_f(hi)}M{_f(c - 2)},{_f(lo)}h4M{_f(c - 2)},{_f(hi)}h4")
            out.append(f'<path d="{d}" stroke="#000" stroke-width="0.8"/>')
    return out


def _line(a: dict, at: _Area) -> list[str]:
    x, y = a["x"], a["y"]
    if a["step"] and x.size:                       # hold each value until the next x
        x, y = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
    return [f'<path d="{_path(at.px(x), at.py(y))}" fill="none" stroke="{a["color"]}" '
            f'stroke-width="{a["width"]}"{_dash(a["dash"])}/>']


def _points(a: dict, at: _Area) -> list[str]:
    return [_marker(a["shape"], x, y, a["color"], a["hollow"])
            for x, y in zip(at.px(a["x"]).tolist(), at.py(a["y"]).tolist()) if not (math.isnan(x) or math.isnan(y))]


def _rule(a: dict, at: _Area) -> list[str]:
    if a["vertical"]:
        v = float(at.px([a["value"]])[0])
        d = f"M{_f(v)},{_f(at.y0)}V{_f(at.y1)}"
    else:
        v = float(at.py([a["value"]])[0])
        d = f"M{_f(at.x0)},{_f(v)}H{_f(at.x1)}"
    return [f'<path d="{d}" stroke="{a["color"]}" stroke-width="{a["width"]}"{_dash(a["dash"])}/>']


# each kind of mark (Panel's methods record them) -> its drawing in a plot area
MARKS: dict[str, Callable[[dict, _Area], list[str]]] = {
    "span": _span, "stairs": _stairs, "bars": _bars, "line": _line, "points": _points, "rule": _rule}


@dataclass
class _Room:
    """A panel's margins around its plot area (px), and its legend's size."""

    left: float
    right: float
    top: float
    bottom: float
    rise: float                   # the x tick labels' height
    legend_w: float = 0.0
    legend_h: float = 0.0
    legend_size: float = TICK_FONT
    legend_columns: int = 1       # the panel's, fewer when a legend below would not fit


def _room(p: Panel, sx: "_Axis", sy: "_Axis") -> _Room:
    """The room a panel's texts take: the title above, the y labels left, the x labels
    (rotated or not) and a legend below, a legend on the right."""
    top = PAD + (p.title_size * 1.3 if p.title else 0)
    ytick_w = max((_text_width(t, TICK_FONT) for t in sy.labels), default=0) if p.yaxis else 0
    left = PAD + (FONT * 1.4 if p.ylabel and p.yaxis else 0) + ytick_w + 6
    xtick_w = max((_text_width(t, TICK_FONT) for t in sx.labels), default=0)
    rise = {0: TICK_FONT, 45: xtick_w * 0.71 + TICK_FONT * 0.7, 90: xtick_w}.get(p.xrotate, TICK_FONT)
    bottom = PAD + rise + 6 + (FONT * 1.5 if p.xlabel else 0)
    if p.xrotate == 45 and sx.labels:                      # the first slanted label reaches left of its tick
        left = max(left, PAD + _text_width(sx.labels[0], TICK_FONT) * 0.71)
    right = PAD + (xtick_w / 2 if p.xrotate == 0 and sx.labels else 0)
    room = _Room(left, right, top, bottom, rise, legend_columns=p.legend_columns)
    if p.entries and p.legend == "right":
        room.legend_w, room.legend_h = _legend_size(p.entries, TICK_FONT, room.legend_columns)
        room.right = PAD + room.legend_w + 8
    if p.entries and p.legend == "below":
        wide = p.width - 2 * PAD
        while room.legend_columns > 1 and _legend_size(p.entries, TICK_FONT, room.legend_columns)[0] > wide:
            room.legend_columns -= 1
        room.legend_size = _fit("x" * (max(len(e.text) for e in p.entries) + 6) * room.legend_columns, wide,
                                TICK_FONT)
        room.legend_w, room.legend_h = _legend_size(p.entries, room.legend_size, room.legend_columns)
        room.bottom += room.legend_h + 6
    return room


def _legend_place(p: Panel, at: _Area, room: _Room, oy: float) -> tuple[float, float, float]:
    """Where a panel's legend goes (its top left) and its font size: right of or below the
    plot area in the room kept for it, or in a corner inside (``best``: the corner that hides
    the fewest points along the lines and of the markers), set smaller if it is too wide."""
    if p.legend == "right":
        return at.x1 + 10, at.y0, room.legend_size
    if p.legend == "below":
        return at.x0 - room.left + PAD, oy + p.height - PAD - room.legend_h, room.legend_size
    size = _fit("x" * max(len(e.text) for e in p.entries), (at.x1 - at.x0) * 0.9 - 30, TICK_FONT)
    w, h = _legend_size(p.entries, size, room.legend_columns)
    corners = {c: (at.x0 + 6 if "left" in c else at.x1 - 6 - w, at.y0 + 6 if "upper" in c else at.y1 - 6 - h)
               for c in CORNERS}
    if p.legend != "best":
        return (*corners[p.legend], size)
    xy = [_along(at.px(m.args["x"]), at.py(m.args["y"]), m.kind == "line") for m in p.marks
          if m.kind in ("line", "points")]
    xs = np.concatenate([a for a, _ in xy]) if xy else np.zeros(0)
    ys = np.concatenate([b for _, b in xy]) if xy else np.zeros(0)
    hidden = {c: int(((xs >= cx) & (xs <= cx + w) & (ys >= cy) & (ys <= cy + h)).sum()) for c, (cx, cy) in corners.items()}
    return (*corners[min(CORNERS, key=hidden.get)], size)


def _draw(p: Panel, ox: float, oy: float, clip_id: str, sx: "_Axis", sy: "_Axis", room: _Room) -> list[str]:
    """The panel's SVG elements, its top left at (ox, oy), in the room given."""
    left, right, top, bottom, rise = room.left, room.right, room.top, room.bottom, room.rise
    x0, x1 = ox + left, ox + p.width - right
    y0, y1 = oy + top, oy + p.height - bottom                   # y0 top of the plot area
    px = lambda v: sx.to(v, x0, x1)
    py = lambda v: sy.to(v, y1, y0)
    out = [f'<clipPath id="{clip_id}"><rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(x1 - x0)}" '
           f'height="{_f(y1 - y0)}"/></clipPath>']
    if p.title:
        size = _fit(p.title, p.width - 2 * PAD, p.title_size)
        out.append(_text(ox + p.width / 2, oy + PAD + size, p.title, size))
    # grid and ticks
    for at, text in zip(px(sx.ticks).tolist(), sx.labels):
        out.append(f'<path d="M{_f(at)},{_f(y1)}v4" stroke="#000" stroke-width="0.8"/>')
        if p.xrotate:
            out.append(_text(at + TICK_FONT * 0.3, y1 + 8, text, TICK_FONT, "end", p.xrotate))
        else:
            out.append(_text(at, y1 + 6 + TICK_FONT, text, TICK_FONT))
    if p.yaxis:
        for at, text in zip(py(sy.ticks).tolist(), sy.labels):
            if p.ycats is None:
                out.append(f'<path d="M{_f(x0)},{_f(at)}H{_f(x1)}" stroke="#eee" stroke-width="0.8"/>')
            out.append(f'<path d="M{_f(x0)},{_f(at)}h-4" stroke="#000" stroke-width="0.8"/>')
            out.append(_text(x0 - 6, at + TICK_FONT * 0.35, text, TICK_FONT, "end"))
    area = _Area(x0, x1, y0, y1, px, py)
    body = [part for m in p.marks for part in MARKS[m.kind](m.args, area)]
    out.append(f'<g clip-path="url(#{clip_id})">{"".join(body)}</g>')
    # the axes over the marks
    if p.frame:
        out.append(f'<rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(x1 - x0)}" height="{_f(y1 - y0)}" fill="none" '
                   f'stroke="#000" stroke-width="0.8"/>')
    else:
        out.append(f'<path d="M{_f(x0)},{_f(y0)}V{_f(y1)}H{_f(x1)}" fill="none" stroke="#000" stroke-width="0.8"/>'
                   if p.yaxis else f'<path d="M{_f(x0)},{_f(y1)}H{_f(x1)}" stroke="#000" stroke-width="0.8"/>')
    if p.xlabel:
        size = _fit(p.xlabel, p.width - 2 * PAD, FONT)
        out.append(_text((x0 + x1) / 2, y1 + 6 + rise + size * 1.2, p.xlabel, size))
    if p.ylabel and p.yaxis:
        size = _fit(p.ylabel, y1 - y0, FONT)
        out.append(_text(ox + PAD + size, (y0 + y1) / 2, p.ylabel, size, rotate=90))
    if p.entries and p.legend:
        out += _legend(p.entries, *_legend_place(p, area, room, oy), room.legend_columns)
    return out


def render(rows: Sequence[Sequence[Panel]]) -> str:
    """The panels as one SVG: each row of panels side by side, the rows stacked."""
    width = max(sum(p.width for p in row) for row in rows)
    height = sum(max(p.height for p in row) for row in rows)
    out, y = [], 0.0
    for i, row in enumerate(rows):
        scales = [(p._scale("x"), p._scale("y")) for p in row]
        rooms = [_room(p, sx, sy) for p, (sx, sy) in zip(row, scales)]
        # the row's plot areas level: the same height of title and x labels above and below
        top, bottom = max(r.top for r in rooms), max(r.bottom for r in rooms)
        x = 0.0
        for j, (p, (sx, sy), r) in enumerate(zip(row, scales, rooms)):
            r.top, r.bottom = top, bottom
            out += _draw(p, x, y, f"c{i}-{j}", sx, sy, r)
            x += p.width
        y += max(p.height for p in row)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
            f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="DejaVu Sans, Arial, sans-serif">'
            f'<rect width="100%" height="100%" fill="#fff"/>{"".join(out)}</svg>')
