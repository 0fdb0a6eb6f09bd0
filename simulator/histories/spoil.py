"""A history's warehouse faults on one block's grid: which rows arrive late and by how many
days, which are written twice, which an outage never recorded (simulator.spec.faults).

Drawn per grid cell (a partner's day; a row of the written table) over the whole grid a
block ever holds, so each date of a horizon sees the same faults on the days it shares with
the dates before it: a row late at one snapshot is there at the next. The draws have
streams of their own, so a history without faults draws nothing and changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..spec.faults import HistoryFaults

LAG = "ingested_at"          # the written table's column: the day the row arrived (a lag in days until dated)


@dataclass(frozen=True)
class Spoil:
    """One block's faults, partners x grid days (column 0: ``day0``, epoch days)."""

    lag: np.ndarray | None       # int16 days each row arrives after its day (0: on time; None: no late rows)
    twice: np.ndarray | None     # int16 days its copy arrives after its day (-1: no copy; None: no duplicates)
    down: np.ndarray | None      # bool: not recorded, an outage (None: no outage touches the block)

    def seen(self, lo: int, hi: int, rows: int) -> np.ndarray:
        """int8, the first ``rows`` partners x grid days ``lo:hi``: how many times each day's
        row is in the warehouse on day ``hi - 1`` (a snapshot's date): 0 when it arrives
        later or was never recorded, 2 when its copy has arrived too, else 1."""
        left = np.arange(hi - lo - 1, -1, -1, dtype=np.int16)     # days from each day to the grid's last
        out = np.ones((rows, hi - lo), dtype=np.int8)
        if self.lag is not None:                  # arrived by the grid's last day
            out *= self.lag[:rows, lo:hi] <= left
        if self.twice is not None:                # (a copy arrives after its row)
            copy = self.twice[:rows, lo:hi]
            out += (copy >= 0) & (copy <= left)
        if self.down is not None:
            out *= ~self.down[:rows, lo:hi]
        return out

    def written(self, frame: pd.DataFrame, cells: np.ndarray, lo: int) -> pd.DataFrame:
        """``frame`` (one row per True cell of ``cells``, grid days ``lo`` on, row-major) as
        the warehouse writes it: a duplicated row twice, its copy right after it, each row
        with its lag (column :data:`LAG`, in days until the stage dates it; a copy's later
        than its original's). Outages and rows arriving after
        as_of are taken out once the rows are dated (``Activity._spoiled``)."""
        hi = lo + cells.shape[1]
        rows = cells.shape[0]
        if self.lag is not None:
            frame[LAG] = self.lag[:rows, lo:hi][cells]
        if self.twice is not None:
            copy = self.twice[:rows, lo:hi][cells]
            again = copy >= 0
            if again.any():
                frame = frame.take(np.repeat(np.arange(len(frame)), 1 + again.astype(np.intp))).reset_index(drop=True)
                if LAG in frame:                  # the copy: the row after its original, arriving later
                    at = np.cumsum(1 + again.astype(np.intp))[again] - 1
                    lags = frame[LAG].to_numpy().copy()
                    lags[at] = copy[again]
                    frame[LAG] = lags
        return frame


def draw(faults: HistoryFaults, rng: Callable[[str], np.random.Generator], m: int, k: int, day0: int,
         where: Sequence[np.ndarray], spared: np.ndarray = np.zeros(0, dtype=np.intp)) -> Spoil:
    """The faults of ``m`` partners on a grid of ``k`` days from epoch day ``day0``;
    ``where``: per outage, whether it holds for each partner (the golden records already
    left out: ``Activity.outage_rows``); ``spared``: the partners (rows of the grid) whose
    rows all arrive, once and on time (the golden records)."""
    lag = twice = down = None
    if faults.late is not None:
        late = _bernoulli(rng("late"), faults.late.share, m * k)
        lag = np.zeros((m, k), dtype=np.int16)
        lag.flat[late] = np.minimum(rng("late-days").geometric(1 / faults.late.days, late.size), 365)
    if faults.duplicates is not None:             # a copy re-delivered: with late rows, later than its row
        twice = np.full((m, k), -1, dtype=np.int16)
        hit = _bernoulli(rng("duplicates"), faults.duplicates.share, m * k)
        twice.flat[hit] = 0 if lag is None else np.minimum(
            lag.flat[hit] + rng("duplicates-days").geometric(1 / faults.late.days, hit.size), 365)
    for outage, holds in zip(faults.outages, where):
        lo = int(np.clip(int(outage.start.astype(np.int64)) - day0, 0, k))
        hi = int(np.clip(int(outage.end.astype(np.int64)) - day0, 0, k))
        if hi > lo and holds.any():
            down = np.zeros((m, k), dtype=bool) if down is None else down
            down[np.ix_(np.flatnonzero(holds), np.arange(lo, hi))] = True
    # after the draws, so that sparing a partner leaves every other partner's faults as they are
    for faulty, clean in ((lag, 0), (twice, -1)):
        if faulty is not None:
            faulty[spared] = clean
    return Spoil(lag, twice, down)


def within(rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The ``rows`` among the partners ``start:stop``, counted from ``start`` (a block's)."""
    rows = np.asarray(rows, dtype=np.intp)
    return rows[(rows >= start) & (rows < stop)] - start


def _bernoulli(rng: np.random.Generator, p: float, size: int) -> np.ndarray:
    """The indices, below ``size``, of independent Bernoulli(``p``) successes: the gaps
    between them are geometric, so a rare fault draws about ``p * size`` numbers, not ``size``."""
    if p <= 0 or size == 0:
        return np.zeros(0, dtype=np.int64)
    if p >= 1:
        return np.arange(size, dtype=np.int64)
    parts, end = [], -1
    while end < size:                           # (one round but rarely: 8 SE of room)
        count = int(p * (size - end) + 8 * np.sqrt(p * (size - end)) + 16)
        hits = end + np.cumsum(rng.geometric(p, count))
        parts.append(hits)
        end = int(hits[-1])
    out = np.concatenate(parts)
    return out[out < size]


def schema(table: Any, faults: HistoryFaults | None, dates: Sequence[str]) -> Any:
    """A history table's pandera schema, with :data:`LAG` (on or after the row's first date)
    when its rows may arrive late."""
    if faults is None or faults.late is None:
        return table
    import pandera.pandas as pa

    first = dates[0]
    out = table.add_columns({LAG: pa.Column("datetime64[us]")})
    out.checks = [*table.checks, pa.Check(lambda df: df[LAG] >= df[first], name=f"{LAG} on or after {first}")]
    return out
