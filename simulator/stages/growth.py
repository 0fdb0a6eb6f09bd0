"""A horizon's master -> sub network, grown period by period (simulator.stages.network).

One snapshot's tree is drawn as it stands at the feature date. A horizon's drawn that way
is anchored there: the subs that stay were recruited on any day up to it, those that left
before it, and the masters' departures were drawn after it. So the earlier a snapshot, the
fewer subs its masters had and the more of them were leaving: at 100,000 partners
(experiment=horizon) the masters' mean recent sub churn fell from 0.78 to 0.36 over the
12 snapshots and their health rose from 79.6 to 89.7.

So a horizon's masters hold ``fanout`` slots each (a sub at a time), filled period by
period from the earliest recruitment day to the feature date: at the start by the
non-masters active then, then in each period by the non-masters who join in it, each into
a slot free since the period before (never filled, or its sub gone) of a master still
there, and recruited the day it joined. A network keeps its size as its subs come and go;
a master who left recruits no one. Recruiting is a state, not a birth trait: the masters
with networks leave first (the contagion chooses them) and a master joins recruiting no
one, so at each period's end masters there who recruited no one start to, at random,
until ``network.without_subs`` of the masters there recruit no one again, each taking one
of the period's newcomers first (drawn once per master, the share rose to 0.75 at the
feature date and took the masters' recent sub churn down with it). A master recruits a
newcomer on the day the later of the two joined. A network fails in spells (``failing.share`` of the time, ``failing.spell_days``
at a time on average, in whole periods, from any date alike): a failing network's free slots take first the
newcomers who leave within the label window's length (``failing.concentration`` of them),
so its master sees its subs go, and may leave, while other networks start failing.

The growth follows the masters' churn, which reads it: :meth:`Growth.advance` runs to a
day given who has left by then (the churn's pass over the masters asks for every period's
start, in order), so each period's recruits go to the masters still there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dates import DAY


@dataclass
class Growth:
    """The network of one block as it grows: ``slots`` holds each slot's master (every
    master's fan-out), ``subs`` the non-masters it may recruit, ``bounds`` the period starts
    (the first the earliest recruitment day, the last the feature date), ``pinned`` the
    masters whose subs are reserved (they recruit, outside the slots)."""

    slots: np.ndarray
    subs: np.ndarray
    joined: np.ndarray
    bounds: np.ndarray
    pinned: np.ndarray
    without: float                  # of the masters there, the share that recruits no one
    share: float                    # of the time a network is failing
    spell: float                    # periods a failing spell lasts on average
    concentration: float            # of the newcomers who leave soon, the share a failing network takes first
    soon: np.timedelta64            # leaving within this of its period's end: soon
    rng: np.random.Generator
    p: int = 0                      # the next period start to grow to
    edges: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.free_since = np.full(self.slots.size, np.datetime64("NaT"), dtype="datetime64[us]")
        self.filled = np.zeros(self.slots.size, dtype=bool)
        self.owners, self.master = np.unique(self.slots, return_inverse=True)
        self.failing = self.rng.random(self.owners.size) < self.share
        self.recruiting = np.zeros(self.owners.size, dtype=bool)
        self.has = np.zeros(self.owners.size, dtype=bool)         # a master with a sub (ever)

    @property
    def done(self) -> bool:
        return self.p >= self.bounds.size

    def advance(self, until: np.datetime64, gone: np.ndarray) -> None:
        """Grow through the period starts up to ``until``; ``gone``: every partner's leaving
        day so far (NaT: still there), known for every master up to ``until``."""
        # per period: into a spell, out of one (a network always failing when share is 1)
        start = min(self.share / max(1 - self.share, 1e-12) / self.spell, 1.0)
        stop = 0.0 if self.share >= 1 else 1 / self.spell
        while not self.done and self.bounds[self.p] <= until:
            p, now = self.p, self.bounds[self.p]
            before = self.bounds[p - 1] if p else now
            if p:                      # spells begin and end (a Markov chain from its stationary law)
                u = self.rng.random(self.failing.size)
                self.failing = np.where(self.failing, u >= stop, u < start)
            owner = self.slots
            # a master there at the period's end (its departures are known to ``until``): it
            # recruits the period's newcomers from the day both are there
            there = self._there(self.owners, now, gone)
            self._recruit(there, int(self._there(self.pinned, now, gone).sum()))
            here = (there & self.recruiting)[self.master]
            free = np.flatnonzero(here & (~self.filled | (self.free_since <= before)))
            subs = self.subs
            if p == 0:                 # the non-masters active at the start
                cand = subs[(self.joined[subs] <= now) & (np.isnat(gone[subs]) | (gone[subs] > now))]
            else:                      # those joining in the period (and not gone the day they joined)
                cand = subs[(self.joined[subs] > before) & (self.joined[subs] <= now) &
                            (np.isnat(gone[subs]) | (gone[subs] > self.joined[subs]))]
            cand, free = self.rng.permutation(cand), self.rng.permutation(free)
            # a master who recruits and has no sub yet takes a newcomer first (one of its slots),
            # so the masters who recruit are those with subs
            _, lead = np.unique(self.master[free], return_index=True)
            lead = lead[~self.has[self.master[free[lead]]]][:cand.size]
            led = np.zeros(free.size, dtype=bool)
            led[lead] = True
            sub0, slot0, cand, free = cand[:lead.size], free[lead], cand[lead.size:], free[~led]
            first = ~np.isnat(gone[cand]) & (gone[cand] <= now + self.soon) & \
                (self.rng.random(cand.size) < self.concentration)
            to_failing = self.failing[self.master[free]]
            k = min(int(first.sum()), int(to_failing.sum()))     # soon leavers into failing networks first
            rest_c = self.rng.permutation(np.concatenate([cand[first][k:], cand[~first]]))
            rest_s = self.rng.permutation(np.concatenate([free[to_failing][k:], free[~to_failing]]))
            m = min(rest_c.size, rest_s.size)
            sub = np.concatenate([sub0, cand[first][:k], rest_c[:m]])
            slot = np.concatenate([slot0, free[to_failing][:k], rest_s[:m]])
            if p == 0:                 # a day of the first period within both lives
                lo = np.maximum(np.maximum(self.joined[owner[slot]], self.joined[sub]), now)
                end = self.bounds[min(1, self.bounds.size - 1)]
                hi = np.minimum(end, np.where(np.isnat(gone[sub]), end, gone[sub] - DAY))
                span = np.maximum((hi - lo) // DAY, 0) + 1
                when = lo + (self.rng.random(sub.size) * span).astype(np.int64) * DAY
            else:                      # the day the later of the two joined, the sub still there
                when = np.maximum(self.joined[sub], self.joined[owner[slot]])
                kept = np.isnat(gone[sub]) | (gone[sub] > when)
                sub, slot, when = sub[kept], slot[kept], when[kept]
            self.has[self.master[slot]] = True
            self.filled[slot] = True
            self.free_since[slot] = gone[sub]
            self.edges.append((owner[slot], sub, when.astype("datetime64[us]")))
            self.p += 1

    def _there(self, rows: np.ndarray, now: np.datetime64, gone: np.ndarray) -> np.ndarray:
        return (self.joined[rows] <= now) & (np.isnat(gone[rows]) | (gone[rows] > now))

    def _recruit(self, there: np.ndarray, pinned: int) -> None:
        """Masters ``there`` at the period's end who recruited no one start to, at random,
        until the share of them (and of the ``pinned``) who do not is ``without`` again:
        those with networks leave first, the contagion choosing them, and a master joins
        recruiting no one."""
        short = int(round((1 - self.without) * (int(there.sum()) + pinned))) - pinned - \
            int(np.count_nonzero(there & self.recruiting))
        if short > 0:
            idle = np.flatnonzero(there & ~self.recruiting)
            self.recruiting[self.rng.choice(idle, min(short, idle.size), replace=False)] = True

    def grown(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(master, sub, recruited) of every edge so far."""
        if not self.edges:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, "datetime64[us]")
        return tuple(np.concatenate([e[i] for e in self.edges]) for i in range(3))
