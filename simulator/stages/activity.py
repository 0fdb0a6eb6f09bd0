"""Raw histories and the features computed from them (the ``activity`` group).

Kind ``histories``: each history (``histories.<name>``) has a history kind (a module of
simulator/histories/), a table, per-partner inputs and options; each feature is an
expression over one history's aggregates. Each history is a plan step: its inputs are
drawn per partner, then blocks of BLOCK partners (two threads) are generated, fixed for
golden pins, reduced to aggregates and evaluated to features; the long table is built
only when it is written. A feature that is also a drawn column is realized exactly by its
history and re-checked, not written, so the churn model can read it before the history
exists.

One timeline: every history ends on each partner's observation end and covers only its
live days (``live_days``, an expression over partners columns, given to every kind as
input ``live``), so the histories run before the churn stage has dated anyone. The
tables carry days before the observation end until :meth:`Activity.finish` dates them
from the observation-end column (world role ``observed_end``; without one, the feature
date for everyone).
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import threads
from ..distributions import SAMPLERS
from ..errors import ConfigError, Problems, did_you_mean
from ..expr import evaluate, frame_env
from ..dates import DAY
from ..histories import KINDS, LIVE, NO_DATE, PartnerKey, calendar, live_days
from ..histories import spoil
from ..histories.calendar import Calendar
from ..identifiers import Names
from ..plan import Step
from ..state import follow
from ..review.data import REFERENCE_ROWS, ClassHistories, FigureSpec, MeasuredTarget, StageReview, Target
from ..spec.checks import FORMATS, _compile, _int, _is_number
from ..spec.faults import HistoryFaults
from ..spec.columns import _column
from ..spec.model import ColumnSpec, Domain
from ..spec.shape import Open
from ..stage import BaseStage, ParseContext, RunContext
from ..streams import stream
from . import columns, forward

BLOCK = 16_384       # partners generated and reduced at a time; fixed, so never changes the data
SOLVE_STEPS = 8      # secant steps of an input's offset (Activity._solve_inputs), at most
SOLVE_TOLERANCE = 1e-5   # ... until every group's expected mean is this close to its declared one


@dataclass(frozen=True)
class HistorySpec:
    """One raw history (a table): its kind, per-partner inputs and options."""

    name: str
    path: str
    kind: str
    table: str
    inputs: Mapping[str, ColumnSpec]          # drawn per partner, or a partners column (kind 'derive')
    options: Mapping[str, Any]
    reads: frozenset[str]                     # partners columns the inputs and option exprs read
    calendar: Calendar | None = None          # the calendar its days follow (histories.calendar)
    faults: HistoryFaults | None = None       # what its table gets wrong (simulator.spec.faults)


@dataclass(frozen=True)
class FeatureSpec:
    """A partners column computed from one history's aggregates (and partners columns)."""

    name: str
    path: str
    history: str
    column: ColumnSpec                        # kind 'derive': expr, round, dtype, clip
    aggregates: frozenset[str]                # the history's aggregates it reads

    @property
    def aggregate(self) -> str | None:
        """The aggregate this feature is, when its expression is just that name (the
        features a golden pin can be realized for, and stats.json can measure)."""
        source = self.column.expr.source.strip()
        return source if source in self.aggregates else None


@dataclass(frozen=True)
class Activity(BaseStage):
    name: str
    kind: str
    live: ColumnSpec                          # each partner's live days (kind 'derive', int)
    histories: tuple[HistorySpec, ...]
    features: tuple[FeatureSpec, ...]
    drawn: frozenset[str]                     # features that are also drawn columns (realized, checked)
    formats: tuple[str, ...]                  # the history tables' file formats
    write: bool                               # False: reduce histories to features, keep no table
    write_auto: bool = True                   # write was 'auto' (decided by auto_write_max)
    auto_write_max: int = 250_000             # partners up to which 'auto' writes
    snapshots: int = 1                        # the timeline's: with more, histories run forward (stages.forward)

    def varying(self) -> frozenset[str]:
        return frozenset(f.name for f in self.features) if self.snapshots > 1 else frozenset()

    def state_at(self, ctx: RunContext, when, gone, state) -> dict[str, object]:
        """Every feature as of the period start on or before ``when``, reduced from the
        histories up to that day (simulator.stages.forward)."""
        j = forward.date_index(ctx.world.timeline, when)
        out: dict[str, object] = {}
        for h in self.histories:
            out.update(ctx.cache[forward.cache_key(self, h.name)][j])
        return out

    @property
    def computed(self) -> list[FeatureSpec]:
        """Features this stage writes (not also drawn columns)."""
        return [f for f in self.features if f.name not in self.drawn]

    def writes(self) -> dict[str, Domain]:
        return {f.name: f.column.domain for f in self.computed}

    def expressions(self) -> list[tuple[str, Any, str | None]]:
        """Each history's labelled weights (e.g. a ticket's tones and topics): numbers."""
        return [(f"{h.path}.{key}.{label}", e, "number") for h in self.histories
                for key, (typ, _, _) in KINDS[h.kind].options.items() if typ == "exprs"
                for label, e in h.options[key].items()]

    def lookback(self) -> list[tuple[str, int]]:
        # each history's grid ends at a partner's observation end: the longest reaches furthest
        spans = [(h.path, KINDS[h.kind].span(h)) for h in self.histories]
        return [max(spans, key=lambda s: s[1])] if spans else []

    def output_columns(self) -> list[str]:
        return [f.name for f in self.computed]

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        out = [(self.live.path, self.live.reads)]
        for h in self.histories:              # (a weight's names under its own path: an unknown one is named there)
            weights = [(f"{h.path}.{key}.{label}", frozenset(e.names) - set(h.inputs))
                       for key, (typ, _, _) in KINDS[h.kind].options.items() if typ == "exprs"
                       for label, e in h.options[key].items()]
            outages = [(f"{o.path}.where", o.where.names) for o in (h.faults.outages if h.faults else ())
                       if o.where is not None]     # (an unknown name under the condition's own path)
            own = h.reads - frozenset().union(*(names for _, names in [*weights, *outages]))
            out += [(h.path, own), *weights, *outages]
        return out

    def steps(self) -> list[Step]:
        out = []
        for h in self.histories:
            feats = [f for f in self.features if f.history == h.name]
            reads = h.reads.union(self.live.reads, *(f.column.reads - f.aggregates for f in feats))
            writes = frozenset(f.name for f in feats if f.name not in self.drawn)
            moves = frozenset(f.name for f in feats) if self.snapshots > 1 else frozenset()
            out.append(Step(self, f"history:{h.name}", reads, writes, payload=h, path=h.path, moves=moves))
        return out

    def tables(self) -> tuple[str, ...]:
        return tuple(h.table for h in self.histories) if self.write else ()

    def files_only(self) -> dict[str, tuple[str, ...]]:
        return {t: self.formats for t in self.tables()}

    def column_checks(self) -> dict:
        return {f.name: columns.range_checks(f.column) for f in self.computed}

    def schemas(self, world, tables) -> dict:
        return {h.table: spoil.schema(KINDS[h.kind].schema(h, world), h.faults, KINDS[h.kind].dates)
                for h in self.histories if self.write}

    def notices(self, world) -> list[str]:
        """Say how much large written histories are, or that they are not written because of their size."""
        n = f"{world.n:,}"
        if self.write and world.n > self.auto_write_max:
            return [f"writing the raw histories of {n} partners: about {world.n * 250 // 1_000_000:,} million "
                    f"rows, streamed block by block; {self.name}.write=false computes the same features from "
                    f"histories that are reduced, not written"]
        if not self.write and self.write_auto:
            return [f"the raw histories of {n} partners are reduced to features and not written "
                    f"({self.name}.write=auto writes them up to {self.name}.auto_write_max="
                    f"{self.auto_write_max:,} partners); {self.name}.write=true writes them at any size"]
        return []

    def run(self, step: Step, ctx: RunContext) -> None:
        """Generate one raw history block by block, reduce each block to its features, and
        keep the rows only if the tables are written."""
        if self.snapshots > 1:
            return forward.run(self, step, ctx)
        h, act, env, n, world = step.payload, self, ctx.env, ctx.n, ctx.world
        kind = KINDS[h.kind]
        inputs = {k: columns.produce(col, env, n, ctx.rng("history", h.name, k), world.as_of)
                  for k, col in h.inputs.items()}
        inputs.update({c: env[c] for c in h.reads if c not in inputs})
        inputs[LIVE] = self._live(ctx)
        # (every grid ends on the feature date here: the churn stage dates the few who left
        # before it later, so their days keep the feature date's calendar)
        if h.calendar is not None:
            inputs.update(self.calendar_inputs(h, h.calendar.codes(env, n), np.full(n, _epoch_day(world.feature_date))))
        self._solve_inputs(ctx, h, inputs)
        feats = [f for f in act.features if f.history == h.name]
        partner_reads = set().union(*(f.column.reads - f.aggregates for f in feats))
        pins = self.history_pins(world, h, feats)
        key = PartnerKey(world.key, ctx.id_dtype) if act.write else None
        span = kind.span(h)
        where = self.outage_rows(h, env, n, ctx.gold.rows)
        day0 = _epoch_day(world.feature_date) - (span - 1)

        def block(start: int) -> tuple[dict[str, np.ndarray], pd.DataFrame | None, dict[str, np.ndarray]]:
            stop = min(n, start + BLOCK)
            try:
                data = kind.generate(h, {k: v[start:stop] for k, v in inputs.items()},
                                     lambda part: ctx.rng("history", h.name, part, str(start // BLOCK)),
                                     act.write or h.faults is not None)
            except ValueError as exc:
                raise ConfigError([f"{h.path}: {exc}"]) from None
            self.realize_pins(h, data, pins, start, stop)
            reads = {c: env[c][start:stop] for c in partner_reads}
            values = self.features_of(feats, kind.reduce(h, data), reads, stop - start)
            frame = kind.frame(h, data, np.arange(start, stop), key) if act.write else None
            if h.faults is None:
                return values, frame, {}
            faults = spoil.draw(h.faults, lambda part: ctx.rng("faults", h.name, part, str(start // BLOCK)),
                                stop - start, span, day0, [w[start:stop] for w in where],
                                spoil.within(ctx.gold.rows, start, stop))
            seen = self.features_of(feats, kind.faulty.observe(h, data, faults.seen(0, span, stop - start)), reads,
                                    stop - start)
            return values, frame if frame is None else faults.written(frame, kind.faulty.cells(h, data), 0), seen

        # blocks have their own streams, so two at a time (numpy's samplers and array
        # kernels release the GIL) give the same data as one at a time
        with ThreadPoolExecutor(max_workers=threads.count()) as pool:
            done = list(pool.map(block, range(0, n, BLOCK)))
        frames = [frame for _, frame, _ in done]
        for f in feats:
            values = np.concatenate([values[f.name] for values, _, _ in done]) if done else np.zeros(0)
            if f.name in self.drawn:
                self.check_realized(ctx, h, f.name, values)
            else:
                env[f.name] = values
            if h.faults is not None:
                ctx.observed[f.name] = [np.concatenate([seen[f.name] for _, _, seen in done]) if done else values]
        if act.write:
            ctx.tables[h.table] = pd.concat(frames, ignore_index=True)

    @staticmethod
    def features_of(feats: list[FeatureSpec], aggregates: Mapping[str, np.ndarray], reads: Mapping[str, Any],
                    m: int) -> dict[str, np.ndarray]:
        """Each feature of ``m`` partners from its history's aggregates and the partners
        columns it reads."""
        fenv = {**aggregates, **reads}
        return {f.name: columns.finish(f.column, evaluate(f.column.expr, fenv, m)) for f in feats}

    @staticmethod
    def outage_rows(h: HistorySpec, env: Mapping[str, Any] | pd.DataFrame, n: int,
                    spared: Any = ()) -> list[np.ndarray]:
        """Per outage of ``h``, the partners it holds for (its ``where`` on their state:
        ``env``'s columns, or a partners table's), but the ``spared`` rows (the golden
        records, whose rows all arrive)."""
        outages = h.faults.outages if h.faults is not None else ()
        if isinstance(env, pd.DataFrame):
            env = frame_env(env, set().union(*(o.where.names for o in outages if o.where is not None)))
        out = [np.ones(n, dtype=bool) if o.where is None else np.array(evaluate(o.where, env, n), dtype=bool)
               for o in outages]
        for holds in out:
            holds[np.asarray(spared, dtype=np.intp)] = False
        return out

    def _solve_inputs(self, ctx: RunContext, h: HistorySpec, inputs: dict[str, Any]) -> None:
        """Offset each measured input its kind can only realize as closely as a partner's
        other inputs allow (``Kind.expect``: a login trend that few logins cannot carry), per
        group of its ``by``, so that the mean of the aggregate the group's partners are
        expected to realize is the declared mean stats.json holds them to (the same
        reference draw's): the first block solves each offset, every other block is handed
        it (the secant method: the expected mean rises with the offset, at most one for one)."""
        kind = KINDS[h.kind]
        for key, expect in kind.expect.items():
            col, (_, needs) = h.inputs[key], kind.measures[key]
            if col.kind != "sample":
                continue
            codes = columns.codes_of(ctx.env[col.by], col.by_keys) if col.by else np.zeros(ctx.n, dtype=np.intp)
            groups = [(label, params) for label, params, _ in columns.group_params(col)]
            @functools.cache
            def secant() -> np.ndarray:               # (once, and only where an offset is not handed over)
                target = np.array([_reference(ctx.world, h, key, col, label, params).mean()
                                   for label, params in groups])
                covered = np.asarray(inputs[LIVE]) >= needs
                count = np.bincount(codes[covered], minlength=len(groups))

                def short(offset: np.ndarray) -> np.ndarray:       # the expected mean's distance to the target
                    total = np.zeros(len(groups))
                    for start in range(0, ctx.n, BLOCK):              # (a block's rows at a time: its memory)
                        rows = slice(start, min(ctx.n, start + BLOCK))
                        part = {k: v[rows] for k, v in inputs.items()}
                        part[key] = np.asarray(part[key], float) + offset[codes[rows]]
                        got, cov = expect(h, part), covered[rows]
                        total += np.bincount(codes[rows][cov], got[cov], len(groups))
                    return target - total / np.maximum(count, 1)
                x0, f0 = np.zeros(len(groups)), short(np.zeros(len(groups)))
                x1 = x0 + f0                                          # one for one where nothing binds
                for _ in range(SOLVE_STEPS):
                    f1 = short(x1)
                    if np.abs(f1).max() < SOLVE_TOLERANCE:
                        break
                    dx = x1 - x0
                    slope = np.where(np.abs(dx) > 1e-12, (f0 - f1) / np.where(dx == 0, 1.0, dx), 1.0)
                    x0, f0, x1 = x1, f1, x1 + f1 / np.clip(slope, 0.05, 1.0)
                return np.where(count > 0, x1, 0.0)
            offsets = np.array([ctx.solve(f"{h.name}.{key}.offset{label}", lambda i=i: float(secant()[i]))
                                for i, (label, _) in enumerate(groups)])
            inputs[key] = np.asarray(inputs[key], float) + offsets[codes]

    @staticmethod
    def calendar_inputs(h: HistorySpec, group: np.ndarray | None, end: Any) -> dict[str, Any]:
        """What a history that follows a calendar is given: each partner's country
        (:meth:`Calendar.codes`) and the day (epoch days) its grid ends on."""
        return {} if h.calendar is None else {calendar.GROUP: group, calendar.END: end}

    def _live(self, ctx: RunContext) -> np.ndarray:
        """Each partner's live days (at least 1: its observation end is one of them)."""
        live = np.asarray(columns.produce(self.live, ctx.env, ctx.n, None, ctx.world.as_of))   # an expression
        if live.size and live.min() < 1:
            bad = int(np.argmin(live))
            raise ConfigError([f"{self.live.path}: must be at least 1 day for every partner (its observation end "
                               f"is a live day), got {live[bad]} for {ctx.env[ctx.world.key][bad]}"])
        return live.astype(np.int64)

    def finish(self, ctx: RunContext, partners: pd.DataFrame) -> None:
        """Date the history tables: ``date = observation end of the row's partner - days``
        (the key's categorical code is the partner's row)."""
        if not self.write:
            return
        role = ctx.world.role("observed_end")
        if self.snapshots > 1:                         # a horizon's rows count back from as_of
            end = np.full(ctx.n, np.datetime64(ctx.world.as_of, "us"))
        else:
            end = (np.asarray(ctx.env[role], dtype="datetime64[us]") if role is not None
                   else np.full(ctx.n, np.datetime64(ctx.world.feature_date, "us")))
        end_us = end.view(np.int64)
        event, returned = ctx.world.role("event_date"), ctx.world.role("returned")
        gone = np.asarray(ctx.env[event], dtype="datetime64[us]") if self.snapshots > 1 and event else None
        back = np.asarray(ctx.env[returned], dtype="datetime64[us]") if gone is not None and returned else None
        for h in self.histories:
            table = ctx.tables[h.table]
            codes = table[ctx.world.key].cat.codes.to_numpy()
            cols = [c for c in KINDS[h.kind].dates if c in table]
            for col in cols:                           # (a Series is taken as is; an array would be copied)
                table[col] = pd.Series(_dates(end_us, codes, table[col].to_numpy()), index=table.index, copy=False)
            if h.faults is not None:
                self._spoiled(ctx, h)
                table = ctx.tables[h.table]
                codes = table[ctx.world.key].cat.codes.to_numpy()
            if gone is not None:                       # what a partner would have done after it left: not done
                left = gone[codes]
                again = back[codes] if back is not None else np.full(len(codes), np.datetime64("NaT", "us"))
                first, *later = cols
                for col in later:                      # (a payout paid, a ticket resolved after it left: not yet)
                    when = table[col].to_numpy(dtype="datetime64[us]")
                    after = ~np.isnat(left) & (when >= left) & ~(when >= again)    # (NaT: never back)
                    if after.any():
                        table[col] = table[col].mask(after)
                day = table[first].to_numpy(dtype="datetime64[us]")
                when = day + (KINDS[h.kind].row_days - 1) * DAY
                keep = np.isnat(left) | np.isnat(when) | (when < left)      # (a row's last day before it left)
                keep |= day >= again                                         # returned: active again
                if not keep.all():
                    ctx.tables[h.table] = table[keep].reset_index(drop=True)

    def _spoiled(self, ctx: RunContext, h: HistorySpec) -> None:
        """The dated table as the warehouse holds it at as_of: each row's arrival day (its
        date plus its lag), the rows arriving after as_of and those an outage never
        recorded taken out."""
        table = ctx.tables[h.table]
        date = KINDS[h.kind].dates[0]
        when = table[date].to_numpy(dtype="datetime64[us]")
        keep = np.ones(len(table), dtype=bool)
        if spoil.LAG in table:
            arrived = when + table[spoil.LAG].to_numpy().astype("timedelta64[D]")
            table[spoil.LAG] = pd.Series(arrived, index=table.index, copy=False)
            keep &= arrived <= np.datetime64(ctx.world.as_of, "us")
        codes = table[ctx.world.key].cat.codes.to_numpy()
        for outage, holds in zip(h.faults.outages, self.outage_rows(h, ctx.env, ctx.n, ctx.gold.rows)):
            keep &= ~(holds[codes] & (when >= outage.start) & (when < outage.end))
        if not keep.all():
            ctx.tables[h.table] = table[keep].reset_index(drop=True)

    def invariants(self, world, tables) -> list[dict]:
        """Every history row inside its partner's life: on or after it joined, on or before
        its observation end (the feature date, or the day before it left)."""
        from ..histories import history_end

        partners = tables[world.table]
        joined_role = world.role("joined")
        if joined_role is None or not self.write:
            return []
        joined = partners[joined_role].to_numpy(dtype="datetime64[us]")
        end = history_end(world, partners)
        returned = world.role("returned") if world.timeline.snapshots > 1 else None    # (rows again from that day)
        back = partners[returned].to_numpy(dtype="datetime64[us]") if returned else np.full(len(partners), np.datetime64("NaT"))
        out = []
        for h in self.histories:
            table = tables.get(h.table)
            if table is None:
                continue
            codes = table[world.key].cat.codes.to_numpy()
            cols = [c for c in KINDS[h.kind].dates if c in table]
            span = (KINDS[h.kind].row_days - 1) * DAY          # (a week's row: its last day too)
            for col in cols:
                when = table[col].to_numpy(dtype="datetime64[us]")
                seen = ~np.isnat(when)
                last = when + span if col == cols[0] else when
                again = ~np.isnat(back[codes]) & (when >= back[codes])
                out.append({"invariant": f"{h.table}.{col}: on or after the partner joined, on or before its "
                                         f"observation end (before it churned, or after it returned)",
                            "violations": int(np.count_nonzero(seen & ((when < joined[codes]) | (last > end[codes]))
                                                               & ~again))})
            if h.faults is not None and h.faults.outages:   # (the partners rows are the key's codes)
                when = table[cols[0]].to_numpy(dtype="datetime64[us]")
                for o, holds in zip(h.faults.outages, self.outage_rows(h, partners, len(partners), world.golden_rows)):
                    out.append({"invariant": f"{h.table}: no row recorded in outage {o.name} ({o.start} up to {o.end}) "
                                             f"but the golden records'",
                                "violations": int(np.count_nonzero(holds[codes] & (when >= o.start) & (when < o.end)))})
        return out

    def golden_filter(self, env, pins, record_of, m):
        """A golden record whose pinned feature a history realizes by moving its events
        (e.g. a login trend) gets a draw that lived through that history's whole grid."""
        live = None
        agree, failures = np.ones(m, dtype=bool), {}
        for h in self.histories:
            kind, span = KINDS[h.kind], KINDS[h.kind].span(h)
            for f in self.features:
                if f.history != h.name or f.aggregate not in kind.realize or f.name not in pins:
                    continue
                if live is None:
                    live = np.asarray(columns.produce(self.live, env, m, None, None), dtype=float)
                for i in pins[f.name][0]:
                    mine = record_of == i
                    agree &= ~mine | (live >= span)
                    if not (mine & (live >= span)).any():
                        failures.setdefault(int(i), f"{f.name} is realized by {h.path}, which needs a partner of "
                                            f"{span} live days ({self.live.path}); no draw lived that long")
        return agree, failures

    def history_pins(self, world, h: HistorySpec, feats: list[FeatureSpec]) -> list[tuple]:
        """Golden pins on features this history must realize: (row, fixer, pin, decimals, why)."""
        fixers = KINDS[h.kind].realize
        out = []
        for rec in world.golden:
            for f in feats:
                agg = f.aggregate
                if f.name in rec.pins and agg in fixers:
                    decimals = f.column.round if isinstance(f.column.round, int) else 9
                    out.append((rec.row, fixers[agg], float(rec.pins[f.name]), decimals,
                                f"{rec.path} ({rec.partner_id}): {f.name} is pinned to {rec.pins[f.name]!r}"))
        return out

    @staticmethod
    def realize_pins(h: HistorySpec, block: dict, pins: list[tuple], start: int, stop: int,
                     where: np.ndarray | None = None) -> None:
        """The golden pins (:meth:`history_pins`) of the partners ``start:stop`` realized on
        their block; ``where``: each partner's position in the block, when the block holds
        them in another order (a horizon's: simulator.stages.forward)."""
        for row, fix, pin, decimals, why in pins:
            if start <= row < stop:
                try:
                    fix(h, block, row - start if where is None else int(where[row - start]), pin, decimals)
                except ValueError as exc:
                    raise ConfigError([f"{why}, but {h.path} cannot realize it: {exc}"]) from None

    def measures(self) -> frozenset[str]:
        """The drawn columns a horizon's histories show instead at the feature date: the
        features that are an aggregate their kind would realize only by rewriting earlier
        days (``Forward.inexact``; simulator.stages.forward)."""
        if self.snapshots == 1:
            return frozenset()
        kinds = {h.name: KINDS[h.kind] for h in self.histories}
        return frozenset(f.name for f in self.features
                         if f.name in self.drawn and kinds[f.history].forward is not None
                         and f.aggregate in kinds[f.history].forward.inexact)

    def measured(self, ctx: RunContext, names: frozenset[str]) -> None:
        """A horizon's drawn columns ``names`` now hold what the histories show at the
        feature date (a history that cannot realize them without rewriting earlier days,
        simulator.stages.forward): the columns the stages before derive from them follow
        (a tier, its proximity), as at every other date (simulator.state)."""
        if names:
            follow(ctx, itertools.takewhile(lambda s: s is not self, ctx.world.stages), ctx.env, names)

    @staticmethod
    def check_realized(ctx: RunContext, h: HistorySpec, name: str, computed: np.ndarray) -> None:
        """A feature that is also a drawn column must come out of its history unchanged."""
        drawn = np.asarray(ctx.env[name])
        same = np.isclose(computed, drawn, rtol=0, atol=1e-9) if drawn.dtype.kind == "f" else computed == drawn
        if not np.all(same):
            bad = np.flatnonzero(~same)
            pid = ctx.env[ctx.world.key][bad[0]]
            raise ConfigError([f"{h.path}: {name} computed from the history differs from the drawn column "
                               f"for {bad.size} partners (e.g. {pid}: drawn {drawn[bad[0]]!r}, computed "
                               f"{computed[bad[0]]!r}); the history cannot realize such values: bound the "
                               f"column (e.g. clip) or widen the history"])

    def review(self, world, tables) -> StageReview:
        """History inputs drawn from a distribution, against the features that measure them
        (one snapshot's: run forward through a horizon, a history realizes a trend given
        the weeks before it, which its state did not choose, so it is a shape, not a target;
        the horizon's experiment declares what its features look like instead)."""
        partners, out = tables[world.table], []
        realized = self._calendar_measured(world, tables)
        faulty = [self._faults_measured(world, h, tables) for h in self.histories
                  if h.faults is not None and h.table in tables]
        if faulty:
            out += [t for targets, _ in faulty for t in targets]
            realized["faults"] = {kind: {h: v for _, found in faulty for h, v in found.get(kind, {}).items()}
                                  for kind in ("late", "duplicates", "outages")}
        if self.snapshots > 1:
            return StageReview(out, realized)
        live = live_days(world, partners)
        for h in self.histories:
            for key, (agg, needs) in KINDS[h.kind].measures.items():
                col = h.inputs[key]
                feature = next((f.name for f in self.features if f.history == h.name
                                and f.aggregate == agg and f.name in partners), None)
                if col.kind != "sample" or feature is None:
                    continue
                covered = np.ones(len(partners), dtype=bool) if live is None else live >= needs
                for label, group, params, _ in columns.by_groups(col, partners):
                    mask = group & covered
                    ref = _reference(world, h, key, col, label, params)
                    x = partners.loc[mask, feature].to_numpy(dtype=float)
                    note = {"note": f"partners with {needs}+ live days"} if needs > 1 and live is not None else {}
                    out.append(MeasuredTarget(f"{h.path}.{key}{label}.mean", ref.mean(), x, ref.std(),
                                              "measured mean", {"feature": feature, **note}))
        return StageReview(out, realized)

    def _faults_measured(self, world, h: HistorySpec, tables) -> tuple[list[Target], dict[str, dict]]:
        """A faulty history's table beside its declared faults: the share of its rows that
        arrived late and their mean delay, the share written twice (targets, over the
        distinct rows dated early enough that a late one has arrived by as_of), and each
        outage's rows not recorded (read back from the partners' live days)."""
        from ..histories import history_end

        table, faults, key = tables[h.table], h.faults, world.key
        date = KINDS[h.kind].dates[0]
        when = table[date].to_numpy(dtype="datetime64[us]")
        ids = table[key].cat.codes.to_numpy()
        again = np.zeros(len(table), dtype=bool)   # (a duplicate is written beside its row)
        again[1:] = (ids[1:] == ids[:-1]) & (when[1:] == when[:-1])
        targets, found = [], {}
        if faults.late is not None:
            late = faults.late
            settled = ~again & (when <= np.datetime64(world.as_of, "us") - np.timedelta64(int(10 * late.days), "D"))
            lag = (table[spoil.LAG].to_numpy(dtype="datetime64[us]")[settled] - when[settled]) // np.timedelta64(1, "D")
            k, delayed = int(settled.sum()), lag[lag > 0]
            share = float(delayed.size / k) if k else 0.0
            note = f"distinct {h.table} rows dated {int(10 * late.days)}+ days before as_of"
            targets += [Target(f"{late.path}.share", late.share, share, float(np.sqrt(late.share * (1 - late.share)
                                                                                      / max(k, 1))), k, "share",
                               {"note": f"{note} whose {spoil.LAG} is after their {date}"}),
                        Target(f"{late.path}.days", late.days, float(delayed.mean()) if delayed.size else 0.0,
                               float(np.sqrt(late.days * (late.days - 1)) / np.sqrt(max(delayed.size, 1))),
                               int(delayed.size), "mean", {"note": f"{note} arriving late: mean days late"})]
            found["late"] = {h.name: {"rows": k, "late": int(delayed.size)}}
        if faults.duplicates is not None:
            dup = faults.duplicates
            k, twice = int((~again).sum()), int(again.sum())
            targets.append(Target(f"{dup.path}.share", dup.share, twice / k if k else 0.0,
                                  float(np.sqrt(dup.share * (1 - dup.share) / max(k, 1))), k, "share",
                                  {"note": f"distinct {h.table} rows written twice"}))
            found["duplicates"] = {h.name: {"rows": k, "duplicated": twice}}
        partners = tables[world.table]
        joined = world.role("joined")
        if faults.outages and joined is not None:
            start = partners[joined].to_numpy(dtype="datetime64[us]")
            end = history_end(world, partners) + np.timedelta64(1, "D")
            found["outages"] = {}
            for o, rows in zip(faults.outages, self.outage_rows(h, partners, len(partners), world.golden_rows)):
                lo = np.maximum(start, np.datetime64(o.start, "us"))
                hi = np.minimum(end, np.datetime64(o.end, "us"))
                days = np.where(rows, np.maximum((hi - lo) // np.timedelta64(1, "D"), 0), 0)
                found["outages"][o.name] = {"history": h.name, "start": str(o.start), "end": str(o.end),
                                            "where": o.where.source if o.where is not None else None,
                                            "partners": int(np.count_nonzero(days)),
                                            "rows_not_recorded": int(days.sum())}
        return targets, found

    def _calendar_measured(self, world, tables) -> dict[str, Any]:
        """The calendar as each written history that follows it shows it (its panel's value
        by weekday and on holidays), beside what it declares; in one snapshot, over the
        partners observed to the feature date (the few who left before it carry the feature
        date's calendar on days that are not its days: see :meth:`run`)."""
        from ..histories import observation_end

        found = {}
        partners = tables[world.table]
        aligned = None
        if self.snapshots == 1:
            aligned = observation_end(world, partners) == np.datetime64(world.feature_date, "us")
        for h in self.histories:
            panel = KINDS[h.kind].panel
            if h.calendar is None or panel is None or h.table not in tables:
                continue
            table = tables[h.table]
            ids = table[world.key]
            row = pd.Index(partners[world.key]).get_indexer(ids.cat.categories)[ids.cat.codes.to_numpy()]
            keep = slice(None) if aligned is None else aligned[row]
            by = h.calendar.by                 # (each partner's country once, then its rows': not a label a row)
            groups = h.calendar.codes({by: partners[by].to_numpy()} if by else {}, len(partners))[row]
            found[h.name] = calendar.measured(h.calendar, table[panel.date].to_numpy(dtype="datetime64[us]")[keep],
                                              table[panel.value].to_numpy()[keep], groups[keep])
        return {"calendar": found} if found else {}

    def figures(self, world, tables) -> list[FigureSpec]:
        """Churners' and healthy partners' written histories on average, one panel per
        history whose kind declares one."""
        return [ClassHistories(heading="Histories by churn class", histories=tuple(
            (h.table, KINDS[h.kind].panel) for h in self.histories
            if KINDS[h.kind].panel is not None and h.table in tables))]

def _epoch_day(day: Any) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def _dates(end_us: np.ndarray, codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """datetime64[us]: each row's partner's observation end minus ``days`` (NO_DATE: NaT),
    in slices of rows small enough for the cache (8x faster than whole columns)."""
    out = np.empty(codes.size, dtype=np.int64)
    step, us = 1 << 20, int(DAY / np.timedelta64(1, "us"))
    for s in range(0, out.size, step):
        d = days[s:s + step]
        back = d.astype(np.int64)
        np.multiply(back, us, out=back)
        np.subtract(end_us[codes[s:s + step]], back, out=out[s:s + step])
        if d.min(initial=0) < 0:
            out[s:s + step][d == NO_DATE] = np.iinfo(np.int64).min      # NaT
    return out.view("datetime64[us]")


def _input(p: Problems, name: str, decl: Any, path: str, domains: dict[str, Domain]) -> ColumnSpec | None:
    """A per-partner input: a distribution (mapping), or an expression / column name / number."""
    if isinstance(decl, Mapping):
        return _column(p, name, decl, path, domains)
    if isinstance(decl, str) or _is_number(decl):
        return _column(p, name, {"expr": str(decl)}, path, domains)
    p.add(path, f"must be a distribution (mapping with dist), a partners column or a number, got {decl!r}")
    return None


def _option(p: Problems, path: str, kind: str, value: Any, minimum: Any) -> Any:
    if kind == "int":
        return _int(p, path, value, minimum)
    if kind == "number":
        if not _is_number(value) or value < minimum:
            p.add(path, f"must be a number >= {minimum}, got {value!r}")
            return None
        return float(value)
    if kind == "name":                         # the rule for names: simulator.identifiers, via _history
        if not isinstance(value, str):
            p.add(path, f"must be a column name, got {value!r}")
            return None
        return value
    if kind == "exprs":
        if not isinstance(value, Mapping) or not value:
            p.add(path, f"must be a non-empty mapping of label -> expression, got {value!r}")
            return None
        out = {str(k): _compile(p, f"{path}.{k}", str(v)) for k, v in value.items()}
        return out if all(out.values()) else None
    if kind == "mapping":                      # read by the kind's own check
        if not isinstance(value, Mapping) or not value:
            p.add(path, f"must be a non-empty mapping, got {value!r}")
            return None
        return value
    raise AssertionError(kind)


def _history(p: Problems, name: str, c: Any, path: str, domains: dict[str, Domain],
             names: Names) -> HistorySpec | None:
    if not isinstance(c, Mapping):
        p.add(path, f"must be a mapping with kind, table and the kind's inputs, got {c!r}")
        return None
    kind = KINDS.get(c.get("kind"))
    if kind is None:
        p.add(f"{path}.kind", f"unknown history kind {c.get('kind')!r}" + did_you_mean(str(c.get("kind")), KINDS))
        return None
    table = c.get("table")
    names.table(f"{path}.table", table)
    known_keys = {"kind", "table", *kind.inputs, *kind.options}
    for key in sorted(set(c) - known_keys):
        p.add(f"{path}.{key}", f"unknown key for a '{kind.name}' history" + did_you_mean(key, known_keys)
              + f" (inputs: {', '.join(kind.inputs)}; options: {', '.join(kind.options)})")
    inputs: dict[str, ColumnSpec] = {}
    for key in kind.inputs:
        if key not in c:
            p.add(f"{path}.{key}", f"missing: a '{kind.name}' history needs {key} ({kind.inputs[key]})")
            continue
        col = _input(p, key, c[key], f"{path}.{key}", domains)
        if col is not None:
            inputs[key] = col
    options: dict[str, Any] = {}
    for key, (typ, default, minimum) in kind.options.items():
        if key not in c and default is None:
            p.add(f"{path}.{key}", f"missing: a '{kind.name}' history needs {key}")
            continue
        options[key] = _option(p, f"{path}.{key}", typ, c.get(key, default), minimum)
        if typ == "name" and options[key] is not None:     # a column of the history's table
            names.column(f"{path}.{key}", options[key])
    exprs = [k for k, (t, _, _) in kind.options.items() if t == "exprs"]
    if kind.check is not None and None not in options.values():
        options = kind.check(p, path, options)
        if options is None:
            return None
    reads = frozenset().union(*(col.reads for col in inputs.values()))
    expr_reads = frozenset().union(*(x.names for e in exprs for x in (options.get(e) or {}).values()))
    if None in options.values() or not isinstance(table, str) or len(inputs) < len(kind.inputs):
        return None
    return HistorySpec(name, path, kind.name, table, inputs, options, reads | (expr_reads - set(inputs)))




class HistoriesKind:
    name = "histories"
    defines_entity = False
    shape = {"kind": None, "formats": None, "write": None, "auto_write_max": None, "live_days": None,
             "histories": Open(None), "calendar": calendar.SHAPE,
             "features": Open({"from": None, "expr": None, "round": None, "dtype": None, "clip": None})}

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Activity | None:
        """Its histories and features; the features' domains join ``ctx.domains``."""
        domains, n = ctx.domains, ctx.n
        live = None
        if c.get("live_days") is None:
            p.add(f"{group}.live_days", "missing: each partner's live days, from joining to its observation end "
                  "(both included), an expression over partners columns, e.g. \"tenure_days + 1\"")
        else:
            live = _input(p, "live_days", str(c["live_days"]), f"{group}.live_days", domains)
        hists = c.get("histories")
        if isinstance(hists, Mapping):                # a history (or feature) set to null is removed
            hists = {k: v for k, v in hists.items() if v is not None}
        declared = {k: v for k, v in (c.get("features") or {}).items() if v is not None}
        if not isinstance(hists, Mapping) or not hists:
            p.add(f"{group}.histories", "must be a non-empty mapping of history name -> declaration")
            return None
        histories = [h for name, decl in hists.items()
                     if (h := _history(p, str(name), decl, f"{group}.histories.{name}", domains, ctx.names)) is not None]
        able = tuple(k.name for k in KINDS.values() if k.calendar)
        cal = calendar.parse(p, ctx.path_of(f"{group}.calendar", c.get("calendar")), c.get("calendar"), domains,
                             {**{str(k): None for k in hists}, **{h.name: h.kind for h in histories}}, able)
        if cal is not None:                   # its histories read the column that picks the country
            histories = [replace(h, calendar=cal, reads=h.reads | ({cal.by} if cal.by else set()))
                         if h.name in cal.histories else h for h in histories]
        faults = {str(name): ctx.history_faults(str(name)) for name in hists}   # (a broken one's too: said once)
        able = [h.name for h in histories if KINDS[h.kind].faulty is not None]
        histories = [_faulty(p, h, faults[h.name], able) for h in histories]
        by_name = {h.name: h for h in histories}
        ctx.names.keys(f"{group}.features", declared)
        features = []
        drawn = frozenset(domains)
        for fname, decl in declared.items():
            path = f"{group}.features.{fname}"
            if not isinstance(decl, Mapping) or "from" not in decl or "expr" not in decl:
                p.add(path, f"must be a mapping with 'from' (a history) and 'expr', got {decl!r}")
                continue
            source = decl["from"]
            if source not in hists:
                p.add(f"{path}.from", f"unknown history {source!r}" + did_you_mean(str(source), hists))
                continue
            col = _column(p, str(fname), {k: v for k, v in decl.items() if k != "from"}, path, domains)
            if col is None or source not in by_name:
                continue
            kind = KINDS[by_name[source].kind]
            aggs = kind.aggregates
            for name in sorted(col.reads - set(aggs) - set(domains)):
                p.add(f"{path}.expr", f"unknown name {name!r}: neither an aggregate of history {source!r} "
                      f"({', '.join(aggs)}) nor a partners column" + did_you_mean(name, [*aggs, *domains]))
            if col.reads & kind.nullable:          # null for a partner too young to measure it
                col = replace(col, domain=replace(col.domain, nullable=True))
            features.append(FeatureSpec(str(fname), path, source, col, frozenset(col.reads & set(aggs))))
        if not features:
            p.add(f"{group}.features", "must declare at least one feature computed from a history")
        # features of a history that failed validation: reported there, not again by their readers
        domains.update({str(f): Domain("any") for f in declared if str(f) not in domains})
        domains.update({f.name: f.column.domain for f in features if f.name not in drawn})
        formats = c.get("formats") or []
        if not formats or any(f not in FORMATS for f in formats):
            p.add(f"{group}.formats", f"must be a non-empty list of {', '.join(FORMATS)}, got {formats!r}")
        write, limit = c.get("write", "auto"), _int(p, f"{group}.auto_write_max", c.get("auto_write_max", 250_000), 0)
        if write == "auto":                       # keep the history rows for writing up to `limit` partners
            write_now = n is not None and limit is not None and n <= limit
        elif isinstance(write, bool):
            write_now = write
        else:
            p.add(f"{group}.write", f"must be true, false or auto, got {write!r}")
            write_now = False
        if live is None:
            return None
        live = replace(live, cast="int", domain=Domain("int"))
        snapshots = ctx.timeline.snapshots if ctx.timeline is not None else 1
        if snapshots > 1:
            _horizon(p, histories, ctx.timeline)
        return Activity(group, self.name, live, tuple(histories), tuple(features),
                        frozenset(f.name for f in features if f.name in drawn), tuple(formats),
                        write_now, write == "auto", limit or 0, snapshots)


def _faulty(p: Problems, h: HistorySpec, faults: HistoryFaults | None, able: list[str]) -> HistorySpec:
    """``h`` with the faults declared on its table, which its kind must know how to read
    (``able``: the histories whose kind does); it reads the columns its outages' conditions do."""
    if faults is None:
        return h
    if KINDS[h.kind].faulty is None:
        kinds = sorted(k.name for k in KINDS.values() if k.faulty is not None)
        for path in faults.paths:
            p.add(path, f"history {h.name!r} is a {h.kind!r} history, which takes no faults yet (histories that "
                  f"can: {', '.join(able) or 'none in this world'}; their kinds: {', '.join(kinds)})")
        return h
    reads = frozenset().union(*(o.where.names for o in faults.outages if o.where is not None))
    return replace(h, faults=faults, reads=h.reads | reads)


def _horizon(p: Problems, histories: list[HistorySpec], tl) -> None:
    """A horizon of snapshots runs every history forward (simulator.stages.forward): its
    kind must know how, one period of ``timeline.episode_days`` at a time."""
    wrong: dict[int, list[str]] = {}           # period length -> the histories that need it
    for h in histories:
        fwd = KINDS[h.kind].forward
        if fwd is None:
            able = sorted(k.name for k in KINDS.values() if k.forward is not None)
            p.add(f"{h.path}.kind", f"timeline.snapshots={tl.snapshots} runs every history forward through the "
                  f"horizon, and a {h.kind!r} history cannot yet (kinds that can: {', '.join(able)}): draw its "
                  f"features instead (activity=none, or the history removed and its features declared as "
                  f"population columns), or timeline.snapshots=1")
        elif fwd.days != tl.episode_days:
            wrong.setdefault(fwd.days, []).append(h.path)
    for days, paths in wrong.items():
        p.add("timeline.episode_days", f"must be {days} with a horizon of snapshots: the histories "
              f"({', '.join(paths)}) run forward {days} days at a time, their feature window; got {tl.episode_days}")


KIND = HistoriesKind()


def _reference(world, h: "HistorySpec", key: str, col: ColumnSpec, label: str, params: Mapping) -> np.ndarray:
    """A large draw of a history input's declared distribution in one group: the mean its
    measured feature is held to (stats.json) and solved to (Activity._solve_inputs)."""
    return SAMPLERS[col.sampler].draw(stream(world.seed, "reference", h.name, key, label), REFERENCE_ROWS, **params)
