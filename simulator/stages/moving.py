"""A population's columns through time: each partner's state at every period start.

The partners table holds each partner's state at the feature date. A world with a horizon
of snapshots (``timeline.snapshots`` > 1) also needs the state at every other period start:
the earlier snapshots', and the label window's later periods' (the state keeps moving
after the feature date, as it did after every earlier snapshot, so every snapshot's label
window is the same kind of future). A drawn column declared with ``persistence: rho`` moves on its quantile: the
partner's draw at the feature date gets a uniform u (its randomized probability integral
transform: exact for a continuous draw, uniform within the value's cell for a rounded,
clipped or discrete one), and z = Phi^-1(u) walks a stationary AR(1),
``z_(k+1) = rho z_k + sqrt(1 - rho^2) e``, one step per period, back and ahead (the
process is reversible, so either way is the same law). Each earlier value is the
sampler's inverse CDF at Phi(z) with the parameters of the partner's ``by`` group as of that
date, then clipped and rounded as declared. So at every date, given every column it reads,
the column has exactly its declared distribution (before churn selects who is still
there), and from month to month it moves the less the nearer rho is to 1; a correlation
rather than a fresh draw is what keeps a partner recognizable from one snapshot to the
next. A column declared ``ages: true`` counts days (a tenure): k periods earlier it is
k x episode_days fewer (more, k periods later). Every other column that reads a moving one is recomputed from the
moved columns, in the order the columns read each other.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from graphlib import TopologicalSorter

import numpy as np
import pandas as pd
from scipy import special

from .. import threads
from ..distributions import SAMPLERS, categorical_codes
from ..spec.model import ColumnSpec
from ..stage import RunContext
from . import columns as C

EDGE = 1e-15          # uniforms are kept this far inside (0, 1): Phi^-1 of 0 or 1 is infinite


def ordered(cols: Sequence[ColumnSpec]) -> tuple[ColumnSpec, ...]:
    """The columns in an order where each comes after every column it reads."""
    by_name = {c.name: c for c in cols}
    return tuple(by_name[name] for name in TopologicalSorter({c.name: c.reads & set(by_name) for c in cols})
                 .static_order())


def moving(cols: Sequence[ColumnSpec]) -> tuple[ColumnSpec, ...]:
    """The columns that move, in an order where each comes after every column it reads:
    those declared to (persistence below 1, or ages), and every column that reads one."""
    moves: set[str] = set()
    order = ordered(cols)
    for c in order:
        if c.persistence < 1 or c.ages or c.shocks or c.reads & moves:
            moves.add(c.name)
    return tuple(c for c in order if c.name in moves)


def _weights(col: ColumnSpec, env: Mapping[str, object]) -> tuple[np.ndarray, np.ndarray | None]:
    return col.weights, (C.codes_of(env[col.by], col.by_keys) if col.by else None)


def quantile(col: ColumnSpec, values: object, env: Mapping[str, object], v: np.ndarray,
             day: np.datetime64 | None = None) -> np.ndarray:
    """A uniform per row whose inverse CDF gives ``values`` (randomized within the value's
    cell by the uniforms ``v``): the partner's draw, as a quantile of its distribution (its
    parameters as shocked on ``day``)."""
    if col.kind == "categorical":
        weights, rows = _weights(col, env)
        cum = np.cumsum(weights, axis=-1)
        cum = cum / cum[..., -1:]
        cum = cum if rows is None else cum[rows]
        codes = C.codes_of(values, col.domain.categories)
        hi = cum[codes] if cum.ndim == 1 else np.take_along_axis(cum, codes[:, None], axis=1)[:, 0]
        w = (weights / weights.sum(axis=-1, keepdims=True))
        w = w[codes] if w.ndim == 1 else np.take_along_axis(w[rows], codes[:, None], axis=1)[:, 0]
        u = hi - w + v * w
    else:
        sampler = SAMPLERS[col.sampler]
        params = C.params_at(col, env, v.size, day)
        x = np.asarray(values, dtype=float)
        lo, hi = x.copy(), x.copy()
        if not sampler.discrete:
            if col.round == "floor":
                hi = x + 1
            elif isinstance(col.round, int):
                half = 0.5 * 10.0 ** -col.round
                lo, hi = x - half, x + half
        if col.clip[0] is not None:
            lo = np.where(x <= col.clip[0], -np.inf, lo)
        if col.clip[1] is not None:
            hi = np.where(x >= col.clip[1], np.inf, hi)
        with np.errstate(invalid="ignore"):
            below = sampler.cdf(np.ceil(lo) - 1 if sampler.discrete else lo, **params)
            upto = sampler.cdf(hi, **params)
        below = np.where(np.isneginf(lo), 0.0, below)
        upto = np.where(np.isposinf(hi), 1.0, upto)
        u = below + v * (upto - below)
    return np.clip(u, EDGE, 1 - EDGE)


def draw_at(col: ColumnSpec, u: np.ndarray, env: Mapping[str, object], day: np.datetime64 | None = None) -> object:
    """The column's value at quantile ``u``, with the parameters as of the state ``env``
    (shocked as on ``day``)."""
    if col.kind == "categorical":
        weights, rows = _weights(col, env)
        return pd.Categorical.from_codes(categorical_codes(weights, u, rows), categories=list(col.domain.categories))
    return C.finish(col, SAMPLERS[col.sampler].ppf(u, **C.params_at(col, env, u.size, day)))


class Motion:
    """The moving columns of one population in one block: their values ``k`` periods before
    the feature date, computed once for every k (the draws are the block's own streams)."""

    def __init__(self, name: str, cols: Sequence[ColumnSpec]):
        self.name = name
        self.cols = moving(cols)
        self.derived = tuple(c for c in ordered(cols) if c.kind not in ("sample", "categorical") and not c.ages)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.cols)

    def steps(self, ctx: RunContext) -> list[dict[str, object]]:
        """The moved columns per period start other than the feature date's: index i < back
        (the snapshots before it and the burn-in's periods) is i + 1 periods before it,
        index back + i is i + 1 periods after it (the label window's later periods, then
        as_of, where a history's last period ends: its days are generated from the state
        at their end, as every period's are); cached on the block's context."""
        key = f"{self.name}:moving"
        if key not in ctx.cache:
            tl, env, n = ctx.world.timeline, ctx.env, ctx.n
            # each drawn column's quantile at the feature date, once for both walks and every step
            u = {c.name: quantile(c, env[c.name], env, ctx.rng("moving", c.name, "cell").random(n), tl.feature_date)
                 for c in self.cols if c.kind in ("sample", "categorical")}
            ctx.cache[key] = self._walk(ctx, u, tl.snapshots - 1 + tl.burn_in, "steps", -1) + \
                self._walk(ctx, u, tl.episodes, "ahead", 1)
            # and the feature date's, as drawn: a history may show another value there (the
            # partners table's then), but what the histories read is the drawn state, as at every
            # other date (simulator.stages.forward)
            ctx.cache[f"{key}:at"] = {c.name: env[c.name] for c in self.cols if c.name in env}
        return ctx.cache[key]

    def _walk(self, ctx: RunContext, u: dict[str, np.ndarray], count: int, stream: str,
              sign: int) -> list[dict[str, object]]:
        """``count`` periods from the feature date, back (sign -1) or ahead (+1), from the
        drawn columns' quantiles ``u``: the AR(1) of each moving draw's normal score, the same
        law either way (it is reversible). Every step is row by row, so the rows are walked
        in parts on the pool's threads (the run's one thread otherwise waits on it: a
        horizon's first state), each part's noise its slice of the block's streams."""
        n = ctx.n
        noise = {c.name: ctx.rng("moving", c.name, stream).standard_normal((count, n))
                 for c in self.cols if c.name in u and c.persistence < 1}
        cuts = np.linspace(0, n, threads.count() + 1).astype(np.int64)
        if n < 2 * WALK_PART or cuts.size < 3:
            return self._walk_rows(ctx, ctx.env, u, noise, count, sign, n)
        with ThreadPoolExecutor(max_workers=threads.count()) as pool:
            parts = list(pool.map(lambda lo, hi: self._walk_rows(
                ctx, _Rows(ctx.env, lo, hi), {k: v[lo:hi] for k, v in u.items()},
                {k: v[:, lo:hi] for k, v in noise.items()}, count, sign, hi - lo), cuts[:-1], cuts[1:]))
        sizes = np.diff(cuts)
        return [{name: _joined([p[k][name] for p in parts], sizes) for name in parts[0][k]} for k in range(count)]

    def _walk_rows(self, ctx: RunContext, env: Mapping[str, object], u: dict[str, np.ndarray],
                   noise: dict[str, np.ndarray], count: int, sign: int, n: int) -> list[dict[str, object]]:
        """:meth:`_walk` for the rows of ``env`` (``n`` of them), their quantiles ``u`` and noise."""
        tl = ctx.world.timeline
        z = {name: special.ndtri(u[name]) for name in noise}
        out: list[dict[str, object]] = []
        for k in range(1, count + 1):
            day = tl.feature_date + sign * k * np.timedelta64(tl.episode_days, "D")
            state: dict[str, object] = {}
            view = _Overlay(env, state)
            for c in self.cols:
                if c.name in z:
                    rho = c.persistence
                    z[c.name] = rho * z[c.name] + np.sqrt(1 - rho * rho) * noise[c.name][k - 1]
                    state[c.name] = draw_at(c, np.clip(special.ndtr(z[c.name]), EDGE, 1 - EDGE), view, day)
                elif c.ages:
                    value = np.asarray(env[c.name])
                    state[c.name] = (value + sign * k * tl.episode_days).astype(value.dtype)
                elif c.name in u:                  # its draw holds, its `by` group moved
                    state[c.name] = draw_at(c, u[c.name], view, day)
                else:
                    state[c.name] = C.produce(c, view, n, None, ctx.world.as_of)
            out.append(state)
        return out

    def follows(self, names: frozenset[str]) -> frozenset[str]:
        """The columns the derived columns among ``names`` read, and what those read, in
        turn: what they follow."""
        out = set(names)
        for c in reversed(self.derived):
            if c.name in out:
                out |= c.reads
        return frozenset(out - names)

    def follow(self, ctx: RunContext, state: Mapping[str, object], given: frozenset[str]) -> dict[str, object]:
        """The columns derived from others (not drawn, not ageing, not ``given``) that
        read a column ``given`` by a later stage, or one recomputed here, recomputed from
        ``state`` in order: a partner's tier follows the 3-month average its commissions
        show at the date, not the drawn average they were generated from (a draw, such as
        the road a partner is on, stays what it was drawn from)."""
        out: dict[str, object] = {}
        changed = set(given)
        view = _Overlay(state, out)
        for c in self.derived:
            if c.name in given or not c.reads & changed:
                continue
            out[c.name] = C.produce(c, view, ctx.n, None, ctx.world.as_of)
            changed.add(c.name)
        return out

    def at(self, ctx: RunContext, when: np.datetime64) -> dict[str, object]:
        """The moved columns as of the day ``when``: on the feature date, the partners
        table's state as drawn (a history that shows another value there puts that in the
        partners table, and what derives from it follows: :meth:`follow`), the state of the
        period start on or before ``when`` otherwise."""
        tl = ctx.world.timeline
        days = int((np.datetime64(when, "D") - np.datetime64(tl.feature_date, "D")).astype(int))
        if not self.cols:
            return {}
        if 0 <= days < tl.episode_days:
            self.steps(ctx)
            return ctx.cache.get(f"{self.name}:moving:at", {})
        back = tl.snapshots - 1 + tl.burn_in
        steps = self.steps(ctx)
        if days < 0:
            k = min(-(days // tl.episode_days), back)      # the period start on or before `when`
            return steps[k - 1] if k else {}
        k = min(days // tl.episode_days, tl.episodes)          # (as_of: one step past the last period start)
        return steps[back + k - 1] if k else {}


WALK_PART = 8_192      # rows below which a walk is not split (its threads would cost more than it)


class _Rows(Mapping):
    """The rows ``lo:hi`` of every column of ``env`` (sliced when read)."""

    def __init__(self, env: Mapping, lo: int, hi: int):
        self.env, self.lo, self.hi, self.cache = env, lo, hi, {}

    def __getitem__(self, key):
        if key not in self.cache:
            v = self.env[key]
            # (a Series' rows renumbered from 0, as the part's own columns are: no alignment between them)
            self.cache[key] = v if np.ndim(v) == 0 else \
                v.iloc[self.lo:self.hi].reset_index(drop=True) if isinstance(v, pd.Series) else v[self.lo:self.hi]
        return self.cache[key]

    def __iter__(self):
        return iter(self.env)

    def __len__(self):
        return len(self.env)

    def __contains__(self, key):
        return key in self.env


def _joined(parts: list, sizes: Sequence[int]) -> object:
    """A column's parts (of ``sizes`` rows, in order) as one column, of the parts' type: a
    pandas array's (categories, nullable ints, zoned dates) as pandas joins it (categories
    that differ give their union's labels, never another's codes); a value one part gives
    for all its rows, once where every part gives the same."""
    first = parts[0]
    if all(np.ndim(p) == 0 for p in parts) and all(p == first for p in parts[1:]):
        return first
    if isinstance(first, pd.Series):
        return pd.concat(parts, ignore_index=True)
    if isinstance(first, pd.api.extensions.ExtensionArray):
        return pd.concat([pd.Series(p, copy=False) for p in parts], ignore_index=True).array
    return np.concatenate([np.full(size, p) if np.ndim(p) == 0 else p for p, size in zip(parts, sizes)])


class _Overlay(Mapping):
    """``top`` over ``base``: the moved columns over the partners table's."""

    def __init__(self, base: Mapping, top: Mapping):
        self.base, self.top = base, top

    def __getitem__(self, key):
        return self.top[key] if key in self.top else self.base[key]

    def __iter__(self):
        return iter({**self.base, **self.top})

    def __len__(self):
        return len(set(self.base) | set(self.top))

    def __contains__(self, key):
        return key in self.top or key in self.base
