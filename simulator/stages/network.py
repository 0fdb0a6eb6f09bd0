"""The master -> sub-affiliate tree and the masters' network features.

Subs come from one permutation of the non-masters, cut into consecutive blocks of
``fanout`` per master until the pool runs out: the same law as repeated
sample-without-replacement, in whole-array operations. Golden masters with pinned network
features first reserve subs whose outcomes realize those pins.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..spec import NetworkSpec

@dataclass(frozen=True)
class Edges:
    master: np.ndarray     # row index of each edge's master
    sub: np.ndarray        # row index of each edge's sub
    days_before: np.ndarray


@dataclass(frozen=True)
class GoldenMaster:
    """A master whose network features are pinned by a golden record."""

    row: int
    partner_id: str
    path: str
    health: float | None
    recent: int | None


def _golden_shape(g: GoldenMaster, fanout: tuple[int, int]) -> tuple[int, int, int]:
    """(subs, churned subs, recently churned subs) that realize the pins exactly."""
    lo, hi = max(fanout[0], 1), fanout[1]
    recent = g.recent or 0
    if g.health is None:
        return lo if recent <= lo else recent, recent, recent
    for size in range(max(lo, recent), hi + 1):
        churned = round((1 - g.health / 100) * size)
        if churned >= recent and round((1 - churned / size) * 100, 2) == round(g.health, 2):
            return size, churned, recent
    raise ConfigError([f"{g.path}: no fan-out in network.fanout [{lo}, {hi}] gives a health score "
                       f"of {g.health} with at least {recent} churned subs"])


def build(spec: NetworkSpec, masters: np.ndarray, churned: np.ndarray, recent: np.ndarray,
          rng: np.random.Generator, golden: list[GoldenMaster]) -> Edges:
    """Edges of the tree. ``recent`` marks partners that churned within recent_days."""
    n = masters.size
    master_rows = np.flatnonzero(masters)
    pool = rng.permutation(np.flatnonzero(~masters))
    wanted = rng.integers(spec.fanout[0], spec.fanout[1] + 1, master_rows.size)
    days = rng.integers(spec.recruited_days[0], spec.recruited_days[1] + 1, n)

    reserved_m, reserved_s = [], []
    taken = np.zeros(n, dtype=bool)
    for g in golden:                           # a handful of pinned masters, not rows
        size, n_churned, n_recent = _golden_shape(g, spec.fanout)
        free = pool[~taken[pool]]
        groups = [free[churned[free] & recent[free]][:n_recent],
                  free[churned[free] & ~recent[free]][:n_churned - n_recent],
                  free[~churned[free]][:size - n_churned]]
        need = (n_recent, n_churned - n_recent, size - n_churned)
        if any(len(grp) < k for grp, k in zip(groups, need)):
            raise ConfigError([f"{g.path}: the pool of non-masters is too small to give "
                               f"{g.partner_id} {size} subs ({n_churned} churned, {n_recent} "
                               f"recently); raise n_partners"])
        subs = np.concatenate(groups)
        taken[subs] = True
        reserved_m.append(np.full(size, g.row))
        reserved_s.append(subs)

    golden_rows = np.array([g.row for g in golden], dtype=np.int64)
    others = ~np.isin(master_rows, golden_rows)
    free = pool[~taken[pool]]
    ends = np.minimum(np.cumsum(wanted[others]), free.size)
    counts = np.diff(ends, prepend=0)
    master = np.concatenate([*reserved_m, np.repeat(master_rows[others], counts)]).astype(np.int64)
    sub = np.concatenate([*reserved_s, free[: ends[-1] if ends.size else 0]]).astype(np.int64)
    return Edges(master, sub, days[sub])


def features(edges: Edges, n: int, masters: np.ndarray, churned: np.ndarray,
             recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(health 0-100, recent churn count) for masters, NaN for everyone else.

    A master without subs has health 100 and no churned subs (seed 2.6).
    """
    size = np.bincount(edges.master, minlength=n)
    lost = np.bincount(edges.master, weights=churned[edges.sub], minlength=n)
    lately = np.bincount(edges.master, weights=(churned & recent)[edges.sub], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        health = np.where(size > 0, np.round((1 - lost / size) * 100, 2), 100.0)
    return np.where(masters, health, np.nan), np.where(masters, lately, np.nan)
