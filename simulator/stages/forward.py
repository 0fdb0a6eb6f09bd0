"""Histories run forward through a horizon of snapshots (``timeline.snapshots`` > 1).

A horizon needs every feature at every period start: the churn hazard of each period reads
the partner's state at its start, and every snapshot is a row of ``features_panel``. So each
history is generated once, forward, for every partner alike: its grid up to the first date
(the burn-in's first period start) as one snapshot's is generated, then one period at a
time (:class:`simulator.histories.Forward`), each period's days from the inputs as of its
last day given the history before them. The inputs are the state as of that day: the
population's moved columns (simulator.stages.moving), and the history's own draws, each a
quantile walking an AR(1) on its normal score with the input's ``persistence`` (1: the
partner's draw holds, its ``by`` group moving). Each date's features are reduced from the
grid ending on it, so they are point in time and equal what a query over the written rows
up to that day computes.

Nothing here knows who churns. The churn stage reads the features at each period start
(:meth:`Activity.state_at`); a partner's rows after its churn are dropped when the tables
are dated (:meth:`Activity.finish`), so a churner's last weeks are the prefix of what it
would have done, never something drawn for leaving.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from .. import threads
from ..errors import ConfigError
from ..histories import KINDS, LIVE, NO_DATE, PartnerKey, spoil
from ..stage import RunContext
from ..state import movers, state_at
from . import columns
from .moving import EDGE, draw_at

BLOCK = 16_384       # partners run forward at a time (the activity stage's block; never changes the data)


def dates(tl: Any) -> np.ndarray:
    """The days a horizon's histories are reduced on: every period start from the burn-in's
    first (whose grid is generated whole) to the last, then as_of, where the histories end."""
    period = np.timedelta64(tl.episode_days, "D")
    first = np.datetime64(tl.start, "D") - tl.burn_in * period
    return first + np.arange(tl.burn_in + tl.periods + 1) * period


def date_index(tl: Any, when: np.datetime64) -> int:
    """The index in :func:`dates` of the period start on or before ``when`` (clipped to the
    horizon's first and last period starts)."""
    days = (np.datetime64(when, "D") - dates(tl)[0]) // np.timedelta64(tl.episode_days, "D")
    return int(np.clip(days, 0, tl.burn_in + tl.periods - 1))


def cache_key(act: Any, history: str) -> str:
    return f"{act.name}:{history}:forward"


class _Inputs:
    """A history's inputs as of each date: partners columns and expressions read from the
    date's state, drawn inputs walking on their quantiles (one AR(1) step per period)."""

    def __init__(self, act: Any, h: Any, ctx: RunContext):
        self.act, self.h, self.ctx, n = act, h, ctx, ctx.n
        self.drawn = {k: c for k, c in h.inputs.items() if c.kind in ("sample", "categorical")}
        self.z = {k: special.ndtri(np.clip(ctx.rng("history", h.name, k, "quantile").random(n), EDGE, 1 - EDGE))
                  for k in self.drawn}
        # a walk's noise is drawn a date at a time, in order (the same numbers as all dates at once),
        # and only for an input that walks: most hold (persistence 1), and 15 dates of noise for
        # each of them took 5 s of the run's one thread at 1M partners
        self.walk = {k: ctx.rng("history", h.name, k, "walk") for k, c in self.drawn.items() if c.persistence < 1}
        self.step = 0
        self.held: dict[str, tuple[np.ndarray | None, Any]] = {}   # a held draw's value, by its group then
        self.live: np.ndarray | None = None                          # live days at the first date

    def next(self, state) -> dict[str, Any]:
        """The inputs at the next date (the first call: the first date's)."""
        ctx, h, n = self.ctx, self.h, self.ctx.n
        out = {}
        for k, col in h.inputs.items():
            if k in self.drawn:
                if k in self.walk:
                    noise = self.walk[k].standard_normal(n)          # (the first date's: drawn, not used)
                    if self.step:
                        rho = col.persistence
                        self.z[k] = rho * self.z[k] + np.sqrt(1 - rho * rho) * noise
                out[k] = self._draw(k, col, state)
            else:
                out[k] = columns.produce(col, state, n, None, ctx.world.as_of)
        out.update({c: state[c] for c in h.reads if c not in out})
        # live days count from joining to the date: the first date's, then as many more as days passed
        if self.step == 0:
            self.live = np.asarray(columns.produce(self.act.live, state, n, None, ctx.world.as_of)).astype(np.int64)
        out[LIVE] = self.live + self.step * ctx.world.timeline.episode_days
        self.step += 1
        return out

    def _draw(self, k: str, col: Any, state) -> Any:
        """The input's value at its quantile; a draw that holds (persistence 1) is the same
        value until its ``by`` group moves, so only the rows whose group moved are drawn
        again (the same values as drawing them all)."""
        u = self.z[k]
        if col.persistence < 1 or col.kind != "sample" or k not in self.held:
            value = draw_at(col, np.clip(special.ndtr(u), EDGE, 1 - EDGE), state)
            self.held[k] = (columns.codes_of(state[col.by], col.by_keys) if col.by else None, value)
            return value
        codes, value = self.held[k]
        if codes is None:
            return value
        now = columns.codes_of(state[col.by], col.by_keys)
        moved = np.flatnonzero(now != codes)
        if moved.size:
            value = value.copy()
            value[moved] = draw_at(col, np.clip(special.ndtr(u[moved]), EDGE, 1 - EDGE),
                                   {col.by: _rows_of(state[col.by], moved)})
            self.held[k] = (now, value)
        return value


def run(act: Any, step: Any, ctx: RunContext) -> None:
    """One history forward through the horizon, block by block: each date's features (the
    feature date's into ``ctx.env``, every period start's into the stage's cache for
    :meth:`Activity.state_at`) and, when written, the rows with their dates counted back
    from as_of."""
    h, env, n, world = step.payload, ctx.env, ctx.n, ctx.world
    kind, tl = KINDS[h.kind], world.timeline
    days = dates(tl)
    at_feature_date = tl.burn_in + tl.snapshots - 1
    feats = [f for f in act.features if f.history == h.name]
    partner_reads = set().union(*(f.column.reads - f.aggregates for f in feats))
    needed = h.reads | act.live.reads | partner_reads
    moving = movers([s for s in world.stages if s is not act], needed)
    gone = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    inputs = _Inputs(act, h, ctx)
    # each date's state and inputs, made on this thread while the blocks run through the dates
    # made before (a block waits for its date's): the inputs' work (0.3 s of a 65,536-partner
    # block) beside the blocks' rather than before it
    states: list[Any] = [None] * days.size
    values: list[Any] = [None] * days.size
    made = _Made()
    by = h.calendar.by if h.calendar is not None else None

    def prepare() -> None:
        group = by_column = None               # each partner's country, again only when its column moved
        for j, day in enumerate(days):
            state = states[j] = state_at(ctx, moving, day, gone) if moving else env
            if h.calendar is not None and (group is None or (by is not None and state[by] is not by_column)):
                group, by_column = h.calendar.codes(state, n), state[by] if by else None
            values[j] = {**inputs.next(state), **act.calendar_inputs(h, group, int(day.astype(np.int64)))}
            made.up_to(j)
    pins = act.history_pins(world, h, feats)
    key = PartnerKey(world.key, ctx.id_dtype) if act.write else None
    as_of, feature_date = np.datetime64(world.as_of, "D"), np.datetime64(tl.feature_date, "D")
    reach = -(-kind.span(h) // kind.forward.days) - 1      # earlier dates whose grid overlaps a date's
    span, period = kind.span(h), kind.forward.days
    snapshots = range(tl.burn_in, tl.burn_in + tl.snapshots)   # the dates the model-ready tables are taken on
    # the days' columns drawn (a date's own streams) where rows are written, and at a faulty
    # table's snapshots, whose features read the days written
    full = [act.write or (h.faults is not None and j in snapshots) for j in range(days.size)]
    down = act.outage_rows(h, env, n, ctx.gold.rows)       # per outage, the partners it holds for
    day0 = int(days[0].astype(np.int64)) - (span - 1)      # the epoch day of the whole grid's first day

    def block(start: int) -> tuple[list[dict[str, np.ndarray]], pd.DataFrame | None]:
        stop = min(n, start + BLOCK)
        made.wait(0)
        # the partners in the order they joined, so those joined by each date are the first
        # ones (nothing is generated for the others yet): each date's block grows
        order, joined = _joined_first(values[0][LIVE][start:stop], tl.episode_days, days.size)
        where = np.empty_like(order)
        where[order] = np.arange(order.size)
        rows = start + order                                     # each position's partner

        faults = None if h.faults is None else spoil.draw(
            h.faults, lambda part: ctx.rng("faults", h.name, part, str(start // BLOCK)), stop - start,
            span + (days.size - 1) * period, day0, [d[rows] for d in down],
            where[spoil.within(ctx.gold.rows, start, stop)])

        def features(j: int, b) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
            """The date's features, and at a snapshot as the faulty table gives them."""
            k = joined[j]
            reads = {c: _rows_of(states[j][c], rows[:k]) for c in partner_reads}
            clean = act.features_of(feats, kind.reduce(h, b), reads, k)
            seen = {} if faults is None or j not in snapshots else act.features_of(
                feats, kind.faulty.observe(h, b, faults.seen(j * period, j * period + span, k)), reads, k)
            return _placed(clean, order, stop - start), _placed(seen, order, stop - start)

        # a kind that would rewrite earlier days to realize a drawn column at the feature date
        # does so for the golden records only (their pins); every other partner's columns are
        # what its history shows there (Activity.measured), so no earlier snapshot reads a
        # day made for a later one
        golden = where[spoil.within(ctx.gold.rows, start, stop)]
        blocks, out = [], []
        for j in range(days.size):
            made.wait(j)
            inp = {k: _rows_of(v, rows[:joined[j]]) for k, v in values[j].items()}
            rng = (lambda part, j=j: ctx.rng("history", h.name, part, str(start // BLOCK), str(j)))
            exact, lag = j == at_feature_date, int((feature_date - days[j]) // np.timedelta64(1, "D"))
            if kind.forward.inexact:
                exact = np.isin(np.arange(joined[j]), golden) if exact else False
            try:
                b = kind.forward.start(h, inp, rng, full[j], days.size - 1, exact=exact, lag=lag,
                                       rows=stop - start) if j == 0 else \
                    kind.forward.advance(h, blocks[-1], inp, rng, full[j], exact=exact, lag=lag)
            except ValueError as exc:
                raise ConfigError([f"{h.path}: {exc}"]) from None
            blocks.append(b)
            if j == at_feature_date:
                act.realize_pins(h, b, pins, start, stop, where)
                if kind.forward.pinned is not None:
                    kind.forward.pinned(h, b)
                # the feature date's block may have moved days of the dates before it (their
                # grids share its days): theirs again
                for i in range(max(0, j - reach) if kind.forward.rewrites else j, j):
                    out[i] = features(i, blocks[i])
            out.append(features(j, b))
            if not act.write and j > reach:           # (no later date reads it again: its memory back)
                blocks[j - reach - 1] = None
        if not act.write:
            return out, None
        if kind.forward.frame_history is not None:     # (its last block ends on as_of; no faulty kind has one)
            return out, kind.forward.frame_history(h, blocks[-1], rows[:joined[-1]], key)
        frames = []
        for j, b in enumerate(blocks):
            last = None if j == 0 else kind.forward.days
            frame = kind.frame(h, b, rows[:joined[j]], key, *(() if last is None else (last,)))
            if faults is not None:
                frame = faults.written(frame, kind.faulty.cells(h, b, last), j * period)
            shift = int((as_of - days[j]) // np.timedelta64(1, "D"))
            for col in [c for c in kind.dates if c in frame]:   # days before as_of, where rows are dated from
                d = frame[col].to_numpy()
                frame[col] = np.where(d == NO_DATE, d, d + shift).astype(d.dtype)
            frames.append(frame)
        return out, pd.concat(frames, ignore_index=True)

    def guarded(start: int) -> tuple[list[dict[str, np.ndarray]], pd.DataFrame | None]:
        try:
            return block(start)
        except _Stopped:
            raise
        except BaseException:                   # (the other blocks stop at their next date)
            made.fail()
            raise

    alongside = threads.count() > 1          # (a worker process keeps to one thread: its dates first)
    if not alongside:
        prepare()
    with ThreadPoolExecutor(max_workers=threads.count()) as pool:
        running = []
        try:
            running = [pool.submit(guarded, start) for start in range(0, n, BLOCK)]
            if alongside:
                prepare()
            # the failure raised is the block's own, not another's that stopped because of it
            failures = [e for e in (task.exception() for task in running) if e is not None]
            if failures:
                raise next((e for e in failures if not isinstance(e, _Stopped)), failures[0])
            done = [task.result() for task in running]
        except BaseException:
            made.fail()
            for task in running:
                task.cancel()
            raise
    per_date = [{f.name: np.concatenate([out[j][0][f.name] for out, _ in done]) if done else np.zeros(0)
                 for f in feats} for j in range(days.size - 1)]
    ctx.cache[cache_key(act, h.name)] = per_date
    shown = act.measures()
    for f in feats:
        if f.name in act.drawn and f.name not in shown:    # realized at the feature date, as one snapshot's are
            act.check_realized(ctx, h, f.name, per_date[at_feature_date][f.name])
        else:
            env[f.name] = per_date[at_feature_date][f.name]
        if h.faults is not None:
            ctx.observed[f.name] = [np.concatenate([out[j][1][f.name] for out, _ in done]) if done
                                    else per_date[j][f.name] for j in snapshots]
    act.measured(ctx, frozenset(f.name for f in feats) & shown)
    if act.write:
        ctx.tables[h.table] = pd.concat([frame for _, frame in done], ignore_index=True)
        done.clear()
        threads.trim()


class _Stopped(Exception):
    """A block stopped because the history failed elsewhere (that failure is the one raised)."""


class _Made:
    """How many of a history's dates are made, for the blocks waiting on them; a failure
    (in making them, or in another block) stops every block at its next date."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count, self.failed = 0, False

    def up_to(self, j: int) -> None:
        with self.cond:
            self.count = j + 1
            self.cond.notify_all()

    def fail(self) -> None:
        with self.cond:
            self.failed = True
            self.cond.notify_all()

    def wait(self, j: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.count > j or self.failed)
            if self.failed:
                raise _Stopped()


def _placed(values: dict[str, np.ndarray], order: np.ndarray, m: int) -> dict[str, np.ndarray]:
    """Features of the first partners of ``order`` put in their rows of a block of ``m``
    (a partner not joined yet: 0, read by no one)."""
    out = {}
    for name, v in values.items():
        out[name] = np.zeros(m, dtype=v.dtype)
        out[name][order[:v.size]] = v
    return out


def _joined_first(live: np.ndarray, days: int, dates: int) -> tuple[np.ndarray, list[int]]:
    """An order of a block's partners (the earliest joined first) and how many of them have
    joined by each date (at least one, so no block is empty): live days at the first
    date are ``live`` and grow by ``days`` a date, so those joined by a date are the first."""
    order = np.argsort(-live, kind="stable")
    return order, [max(int(np.count_nonzero(live + j * days >= 1)), 1) for j in range(dates)]


def _rows_of(values: Any, rows: np.ndarray) -> Any:
    if np.isscalar(values):
        return values
    return values[rows] if not isinstance(values, pd.Series) else values.iloc[rows]
