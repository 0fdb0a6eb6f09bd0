"""The master -> sub-affiliate tree and the masters' network features, on the timeline.

Kind ``network``. A declared share of masters has recruited no one; every other master
gets a fan-out drawn from ``fanout``, its subs drawn without replacement from one
permutation of the non-masters (the same law as repeated sampling without replacement,
in whole-array operations); non-masters left over are independent (in no network); in a
world too small for the declared shares, the masters whose blocks do not fit recruit no
one (with a warning). A declared share of the networks is *failing*: the subs that left
before the feature date are concentrated there (``failing.concentration`` of them), which
is what contagion means: the subs leave first, then the master's risk reads it. A sub is
recruited on a day within both lives, before the feature date: after both joined, before
the sub left (subs that left before their master joined are swapped with staying subs of
older masters). The masters' features are observed at the feature date: the share of subs
still active (health, 0-100) and the subs that left in the ``recent_days`` before it.
Golden masters with pinned features first reserve subs that realize the pins. The step is
*scoped* by the masters column (simulator.plan): it reads non-masters' churn and writes
masters' features, so a churn model that reads those features runs in two passes around it.
A horizon's network is not drawn at the feature date but grown period by period, with the
pass over the masters (simulator.stages.growth): each master's ``fanout`` is its slots, a
sub at a time, and networks fail in spells.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import ids
from ..dates import DAY
from ..errors import ConfigError, Problems
from ..plan import Step, split_around
from ..review.data import FigureSpec, Histogram, StageReview, Target
from ..spec.checks import _int, _is_number, _pair, section
from ..spec.model import Domain
from ..stage import BaseStage, ParseContext, RunContext
from . import growth

log = logging.getLogger("simulator")


@dataclass(frozen=True)
class Edges:
    master: np.ndarray     # row index of each edge's master
    sub: np.ndarray        # row index of each edge's sub
    recruited: np.ndarray | None = None   # each edge's recruitment day (None: before any day asked)


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


def _reserve(g: GoldenMaster, spec: "Network", pool: np.ndarray, taken: np.ndarray, churned: np.ndarray,
             recent: np.ndarray, alive_then: np.ndarray) -> np.ndarray:
    """Subs (from the untaken pool, still active when the master joined) that give a
    golden master its pinned features."""
    n = churned.size
    size, n_churned, n_recent = _golden_shape(g, spec.fanout)
    free = pool[~taken[pool] & alive_then[pool]]
    groups = [free[churned[free] & recent[free]][:n_recent],
              free[churned[free] & ~recent[free]][:n_churned - n_recent],
              free[~churned[free]][:size - n_churned]]
    need = (n_recent, n_churned - n_recent, size - n_churned)
    if any(len(grp) < k for grp, k in zip(groups, need)):
        # the same shares of recently left, earlier left and staying non-masters in a larger
        # world: the smallest n_partners whose pool holds every group needed
        have = [np.sum(churned[pool] & recent[pool]), np.sum(churned[pool] & ~recent[pool]),
                np.sum(~churned[pool])]
        what = ("recently (in network.recent_days before the feature date)", "earlier, before the feature date",
                "staying past the feature date")
        empty = [w for k, h, w in zip(need, have, what) if k and not h]
        if empty:                  # (no share to scale: more partners may not help)
            raise ConfigError([f"{g.path}: {g.partner_id} needs subs who left {empty[0]}, and none of this "
                               f"world's {pool.size:,} non-masters did: its timeline (timeline.burn_in, "
                               f"timeline.snapshots, as_of) or network.recent_days may leave none at any "
                               f"n_partners; in a small world, raise n_partners"])
        scale = max(k / max(h, 1) for k, h in zip(need, have))
        least = int(np.ceil(n * scale)) + 1
        raise ConfigError([f"{g.path}: the pool of non-masters is too small to give {g.partner_id} {size} subs "
                           f"({n_churned} gone by the feature date, {n_recent} recently); raise n_partners (at "
                           f"this world's shares of leaving and staying non-masters, about {least} partners "
                           f"give that pool)"])
    return np.concatenate(groups)


def _recruiters(spec: "Network", masters: np.ndarray, churned: np.ndarray, recent: np.ndarray,
                rng: np.random.Generator, golden: list[GoldenMaster], joined: np.ndarray,
                gone: np.ndarray) -> tuple:
    """The masters' rows, the non-masters in an order of their own, each master's drawn
    fan-out, the golden masters' reserved edges (masters, subs), the partners they took,
    and which other masters recruit (all but exactly round(without_subs x masters))."""
    n = masters.size
    master_rows = np.flatnonzero(masters)
    pool = rng.permutation(np.flatnonzero(~masters))
    wanted = rng.integers(spec.fanout[0], spec.fanout[1] + 1, master_rows.size)
    empty = rng.random(master_rows.size)
    reserved_m, reserved_s = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    taken = np.zeros(n, dtype=bool)
    for g in golden:                           # a handful of pinned masters, not rows
        subs = _reserve(g, spec, pool, taken, churned, recent, np.isnat(gone) | (gone > joined[g.row]))
        taken[subs] = True
        reserved_m.append(np.full(subs.size, g.row))
        reserved_s.append(subs)
    others = ~np.isin(master_rows, np.array([g.row for g in golden], dtype=np.int64))
    # exactly round(share x masters) recruit no one: the masters with the smallest draws
    k = int(round(spec.without_subs * master_rows.size))
    order = np.argsort(np.where(others, empty, np.inf), kind="stable")
    recruits = others.copy()
    recruits[order[:min(k, int(others.sum()))]] = False
    return master_rows, pool, wanted, (np.concatenate(reserved_m), np.concatenate(reserved_s)), taken, recruits


def build(spec: "Network", masters: np.ndarray, churned: np.ndarray, recent: np.ndarray,
          rng: np.random.Generator, golden: list[GoldenMaster], joined: np.ndarray, gone: np.ndarray) -> Edges:
    """Edges of the tree. ``churned`` marks partners gone by the feature date, ``recent``
    those gone in the recent_days before it (a sub that left before its master joined is
    swapped afterwards: :func:`_match`)."""
    master_rows, pool, wanted, (reserved_m, reserved_s), taken, recruits = _recruiters(
        spec, masters, churned, recent, rng, golden, joined, gone)
    free = pool[~taken[pool]]
    counts = np.where(recruits, wanted, 0)
    if counts.sum() > free.size:
        # more subs wanted than there are: the masters whose blocks do not fit recruit no
        # one (a small world's chance; stats.json shows the share realized beside the declared)
        fits = np.zeros_like(recruits)
        order = np.flatnonzero(recruits)
        fits[order[np.cumsum(counts[order]) <= free.size]] = True
        short = int(recruits.sum() - fits.sum())
        need = 1 - fits.sum() / max(master_rows.size, 1)
        log.warning("%s: %d masters with %d-%d subs each need %d subs but only %d non-masters are free: %d more "
                    "masters recruit no one (%.2f of masters instead of %s.without_subs=%s)", spec.name,
                    int(recruits.sum()), spec.fanout[0], spec.fanout[1], int(counts.sum()), free.size, short, need,
                    spec.name, spec.without_subs)
        recruits, counts = fits, np.where(fits, wanted, 0)
    slots = np.repeat(master_rows, counts)
    chosen = free[:slots.size]
    return Edges(np.concatenate([reserved_m, slots]).astype(np.int64),
                 np.concatenate([reserved_s, _cluster(spec, slots, chosen, churned, recruits, master_rows, rng)]
                                ).astype(np.int64))


def _cluster(spec: "Network", slots: np.ndarray, chosen: np.ndarray, churned: np.ndarray, recruits: np.ndarray,
             master_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The chosen subs in slot order, with the declared concentration of those that left
    before the feature date in the failing networks (the rest spread at random)."""
    failing_rows = master_rows[recruits][rng.random(int(recruits.sum())) < spec.failing_share]
    in_failing = np.isin(slots, failing_rows)
    f_slots, o_slots = rng.permutation(np.flatnonzero(in_failing)), rng.permutation(np.flatnonzero(~in_failing))
    left, stay = chosen[churned[chosen]], chosen[~churned[chosen]]
    k = min(int(round(spec.concentration * left.size)), f_slots.size)
    k = max(k, left.size - o_slots.size)      # what the other networks cannot hold goes to failing ones
    out = np.empty(slots.size, dtype=np.int64)
    out[f_slots[:k]] = left[:k]
    out[o_slots[:left.size - k]] = left[k:]
    out[np.concatenate([f_slots[k:], o_slots[left.size - k:]])] = stay
    return out


def _match(edges: Edges, joined: np.ndarray, gone: np.ndarray, fixed: int, rng: np.random.Generator,
           feature_date: np.datetime64) -> Edges:
    """Swap subs that left on or before their master joined with staying subs of masters
    that joined before they left (the first ``fixed`` edges, a golden master's, stay).
    Rounds of whole-array swaps at random first; where they collide and strand a sub (a
    less constrained one took the only staying sub it could have), an exact matching from
    the start (:func:`_match_exactly`)."""
    sub = edges.sub.copy()
    created_m = joined[edges.master]
    for _ in range(20):
        bad = np.flatnonzero(gone[sub] <= created_m)
        if bad.size == 0:
            return Edges(edges.master, sub)
        cand, limit = _staying(sub, bad, created_m, gone, fixed, feature_date)
        ok = limit > 0
        bad, limit = bad[ok], limit[ok]
        pick = cand[(rng.random(bad.size) * limit).astype(np.int64)]
        _, first = np.unique(pick, return_index=True)          # one swap per partner edge a round
        bad, pick = bad[first], pick[first]
        sub[bad], sub[pick] = sub[pick], sub[bad].copy()
    sub = _match_exactly(edges.sub.copy(), created_m, gone, fixed, feature_date)
    if sub is None:
        raise ConfigError(["network: cannot match subs that left before their master joined to masters that had "
                           "joined by then; lower churn.earlier.days or raise n_partners"])
    return Edges(edges.master, sub)


def _staying(sub: np.ndarray, bad: np.ndarray, created_m: np.ndarray, gone: np.ndarray, fixed: int,
             feature_date: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
    """The edges of staying subs, by their master's joining, and for each of ``bad`` how
    many of them it may take (those whose master joined before it left: a prefix)."""
    cand = np.flatnonzero(np.isnat(gone[sub]) | (gone[sub] > feature_date))
    cand = cand[cand >= fixed]
    cand = cand[np.argsort(created_m[cand], kind="stable")]
    return cand, np.searchsorted(created_m[cand], gone[sub[bad]], side="left")


def _match_exactly(sub: np.ndarray, created_m: np.ndarray, gone: np.ndarray, fixed: int,
                   feature_date: np.datetime64) -> np.ndarray | None:
    """Every misplaced sub swapped with a distinct staying sub it may take, or None when no
    such matching exists: each may take a prefix of the staying subs, so giving the most
    constrained the first, the next the second, and so on matches them all exactly when
    Hall's condition holds (the k-th most constrained may take more than k)."""
    bad = np.flatnonzero(gone[sub] <= created_m)
    cand, limit = _staying(sub, bad, created_m, gone, fixed, feature_date)
    order = np.argsort(limit, kind="stable")
    bad, limit = bad[order], limit[order]
    if (limit <= np.arange(bad.size)).any():
        return None
    pick = cand[:bad.size]
    sub[bad], sub[pick] = sub[pick], sub[bad].copy()
    return sub


def features(edges: Edges, n: int, masters: np.ndarray, churned: np.ndarray,
             recent: np.ndarray, when: np.datetime64 | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(health 0-100, recent churn count) for masters, NaN for everyone else, counting the
    subs recruited by the day ``when`` (None: every sub).

    A master without subs has health 100 and no churned subs (seed 2.6).
    """
    counted = np.ones(edges.master.size) if when is None or edges.recruited is None else \
        (edges.recruited <= when).astype(float)
    size = np.bincount(edges.master, weights=counted, minlength=n)
    lost = np.bincount(edges.master, weights=churned[edges.sub] * counted, minlength=n)
    lately = np.bincount(edges.master, weights=(churned & recent)[edges.sub] * counted, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        health = np.where(size > 0, np.round((1 - lost / size) * 100, 2), 100.0)
    return np.where(masters, health, np.nan), np.where(masters, lately, np.nan)


@dataclass(frozen=True)
class Network(BaseStage):
    name: str
    kind: str
    table_name: str
    masters: str
    fanout: tuple[int, int]
    without_subs: float                       # share of masters who recruited no one
    failing_share: float                      # share of masters with subs whose network is failing
    concentration: float                      # share of the subs who left early that are in failing networks
    within_days: int                          # recruitment at most this many days before the horizon's start
    recent_days: int
    health: str
    recent_churn: str
    churn_label: str                          # the churn label, date and joining date it reads
    churn_date: str
    joined: str
    tenure: str | None = None                 # days from joining to the feature date (golden masters' filter)
    spell_days: int = 90                      # a horizon's failing spell, on average (simulator.stages.growth)

    def golden_filter(self, env, pins, record_of, m):
        """A master whose pinned network lost subs before the feature date has existed
        through the recruitment window (so those subs can have been its own)."""
        if self.tenure is None or self.tenure not in env or not ({self.health, self.recent_churn} & set(pins)):
            return None
        ok = np.ones(m, dtype=bool)
        failures = {}
        records = set().union(*(set(pins[c][0].tolist()) for c in (self.health, self.recent_churn) if c in pins))
        old = np.asarray(env[self.tenure], dtype=float) >= self.within_days
        for i in records:
            sel = record_of == i
            if not old[sel].any():
                failures[i] = (f"a master with pinned network features needs {self.tenure} >= "
                               f"{self.name}.recruited_within_days ({self.within_days})")
            ok &= old | ~sel
        return ok, failures

    def writes(self) -> dict[str, Domain]:
        return _owned(self.health, self.recent_churn)

    def output_columns(self) -> list[str]:
        return [self.health, self.recent_churn]

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        for key, col, dtype, what in (("masters", self.masters, "bool", "a boolean column"),
                                      ("churn_label", self.churn_label, "bool", "a boolean column"),
                                      ("churn_date", self.churn_date, "datetime", "a date column"),
                                      ("joined", self.joined, "datetime", "a date column (e.g. created_at)")):
            dom = domains.get(col)
            if dom is None or dom.dtype not in (dtype, "any"):
                p.add(f"{self.name}.{key}", f"must name {what}, got {col!r}")

    def steps(self) -> list[Step]:
        reads = {self.masters, self.churn_label, self.churn_date, self.joined}
        return [Step(self, self.name, frozenset(reads), frozenset(self.writes()), path=self.name,
                     scope_column=self.masters)]

    def _gone(self, when: np.datetime64, gone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(left by the day ``when``, left in the recent_days up to it)."""
        left = ~np.isnat(gone) & (gone <= when)
        return left, left & (gone > when - self.recent_days * DAY)

    def _earliest(self, world) -> np.datetime64:
        """The earliest recruitment day: ``within_days`` before the horizon's start, or the
        burn-in's start when it is earlier (a sub that left in a long burn-in was recruited
        before it left)."""
        tl = world.timeline
        return min(tl.start - self.within_days * DAY, tl.feature_date - tl.played_days * DAY)

    def varying(self) -> frozenset[str]:
        return frozenset([self.health, self.recent_churn])

    def kept(self, ctx: RunContext):
        """The growing network, kept (a trial play advances it): each call puts back a
        fresh copy, so every trial starts from the same network."""
        key = f"{self.name}:growth"
        if key not in ctx.facts:
            return lambda: None
        saved = copy.deepcopy(ctx.facts[key])
        return lambda: ctx.facts.__setitem__(key, copy.deepcopy(saved))

    def state_at(self, ctx: RunContext, when: np.datetime64, gone: np.ndarray, state) -> dict[str, np.ndarray]:
        """The masters' features as of ``when``: contagion through time, the subs that left
        since the feature date counted at each later period's start. A horizon's network
        grows to ``when`` first, given who has left (simulator.stages.growth); at the
        feature date it is settled: the partners table's features and the table."""
        growing = ctx.facts.get(f"{self.name}:growth")
        if growing is not None:
            growing.advance(min(np.datetime64(when, "us"), np.datetime64(ctx.world.feature_date, "us")), gone)
            if growing.done:
                self._settle(ctx)
        left, recent = self._gone(when, gone)
        masters = np.asarray(ctx.env[self.masters], dtype=bool)
        edges = ctx.facts[f"{self.name}:edges"] if growing is None or growing.done else self._edges(ctx, growing)
        health, lately = features(edges, ctx.n, masters, left, recent, when)
        return {self.health: health, self.recent_churn: lately}

    def run(self, step: Step, ctx: RunContext) -> None:
        env, world = ctx.env, ctx.world
        masters = np.asarray(env[self.masters], dtype=bool)
        gone, joined = env[self.churn_date], env[self.joined]
        left, recent = self._gone(world.feature_date, np.asarray(gone, dtype="datetime64[us]"))
        pinned = [GoldenMaster(r.row, r.partner_id, r.path, r.pins.get(self.health), r.pins.get(self.recent_churn))
                  for r in world.golden if self.health in r.pins or self.recent_churn in r.pins]
        rng = ctx.rng("network", "tree")
        if world.timeline.snapshots > 1:
            self._grow(step, ctx, masters, left, recent, pinned, joined, gone, rng)
            return
        edges = build(self, masters, left, recent, rng, pinned, joined, gone)
        fixed = int(np.isin(edges.master, [g.row for g in pinned]).sum())
        edges = _match(edges, joined, gone, fixed, ctx.rng("network", "match"), world.feature_date)
        self._publish(ctx, edges, self._recruited(ctx, edges))

    def _recruited(self, ctx: RunContext, edges: Edges) -> np.ndarray:
        """A day within both lives, before the feature date (and within_days before the
        horizon's start), for each edge."""
        env, world = ctx.env, ctx.world
        gone, joined = np.asarray(env[self.churn_date], dtype="datetime64[us]"), env[self.joined]
        left, _ = self._gone(world.feature_date, gone)
        lo = np.maximum(np.maximum(joined[edges.master], joined[edges.sub]), self._earliest(world))
        end = np.where(left[edges.sub], gone[edges.sub] - DAY, world.feature_date)
        span = (end - lo) // DAY + 1
        return lo + (ctx.rng("network", "recruited").random(span.size) * span).astype(np.int64) * DAY

    def _grow(self, step: Step, ctx: RunContext, masters, left, recent, pinned, joined, gone, rng) -> None:
        """A horizon's network (simulator.stages.growth): the golden masters' subs reserved
        as one snapshot's are, every other master's slots filled period by period. When the
        churn is split around this step (it reads the masters' features), the masters'
        departures come with its pass over them, which grows the network (:meth:`state_at`);
        otherwise they are known already and it grows here."""
        world, tl = ctx.world, ctx.world.timeline
        # (who recruits is the growth's state, not the one-snapshot draw: that is left unused)
        master_rows, pool, wanted, (reserved_m, reserved_s), taken, _ = _recruiters(
            self, masters, left, recent, rng, pinned, joined, gone)
        reserved = Edges(reserved_m.astype(np.int64), reserved_s.astype(np.int64))
        ctx.facts[f"{self.name}:reserved"] = Edges(reserved.master, reserved.sub, self._recruited(ctx, reserved))
        first, period = np.datetime64(self._earliest(world), "us"), np.timedelta64(tl.episode_days, "D")
        feature_date = np.datetime64(tl.feature_date, "us")
        # the churn's own period starts (back from the feature date), after the first recruitment day
        back = feature_date - np.arange((feature_date - first) // period + 1)[::-1] * period
        bounds = np.unique(np.append(first, back).astype("datetime64[us]"))
        golden = np.array([g.row for g in pinned], dtype=np.int64)
        others = ~np.isin(master_rows, golden)
        growing = growth.Growth(np.repeat(master_rows, np.where(others, wanted, 0)), pool[~taken[pool]],
                                np.asarray(joined, dtype="datetime64[us]"), bounds, golden, self.without_subs,
                                self.failing_share,
                                self.spell_days / tl.episode_days, self.concentration, tl.window_days * DAY,
                                ctx.rng("network", "grow"))
        ctx.facts[f"{self.name}:growth"] = growing
        # (the features until the masters' pass settles them: the reserved subs' alone)
        ctx.env[self.health], ctx.env[self.recent_churn] = features(reserved, ctx.n, masters, left, recent)
        if not split_around(step):               # (no pass over the masters to come)
            growing.advance(np.datetime64(tl.feature_date, "us"), np.asarray(gone, dtype="datetime64[us]"))
            self._settle(ctx)

    def _edges(self, ctx: RunContext, growing: "growth.Growth") -> Edges:
        reserved = ctx.facts[f"{self.name}:reserved"]
        master, sub, when = growing.grown()
        return Edges(np.concatenate([reserved.master, master]).astype(np.int64),
                     np.concatenate([reserved.sub, sub]).astype(np.int64),
                     np.concatenate([reserved.recruited, when]))

    def _settle(self, ctx: RunContext) -> None:
        """The grown network as it stands at the feature date: the masters' features in the
        partners table, and the table."""
        growing = ctx.facts.pop(f"{self.name}:growth")
        edges = self._edges(ctx, growing)
        ctx.facts.pop(f"{self.name}:reserved")
        self._publish(ctx, Edges(edges.master, edges.sub), edges.recruited)

    def _publish(self, ctx: RunContext, edges: Edges, when: np.ndarray) -> None:
        """The masters' features at the feature date and the table of ``edges`` recruited on ``when``."""
        env, world = ctx.env, ctx.world
        masters = np.asarray(env[self.masters], dtype=bool)
        left, recent = self._gone(world.feature_date, np.asarray(env[self.churn_date], dtype="datetime64[us]"))
        env[self.health], env[self.recent_churn] = features(edges, ctx.n, masters, left, recent)
        edges = Edges(edges.master, edges.sub, when)
        pid, m = env[world.key], edges.master.size
        ctx.facts[f"{self.name}:edges"] = edges          # rows of each edge, for finish
        ctx.tables[self.table_name] = pd.DataFrame({
            "relationship_id": ids.uuid4s(ctx.rng("network", "relationship_id"), m),
            "master_affiliate_id": pid.take(edges.master),
            "sub_affiliate_id": pid.take(edges.sub),
            "recruited_at": when,
            "is_active": np.ones(m, dtype=bool),
        })

    def finish(self, ctx: RunContext, partners: pd.DataFrame) -> None:
        """A relationship is active while both partners are (as of as_of). A master that
        left during the horizon recruited no one after it left (those subs stay
        independent)."""
        edges = ctx.facts.pop(f"{self.name}:edges")
        tl = ctx.world.timeline
        gone = partners[self.churn_date].to_numpy(dtype="datetime64[us]")
        if tl.snapshots > 1:
            left_early = ~np.isnat(gone) & (gone <= tl.feature_date)       # in the horizon or its burn-in
            keep = ~(left_early[edges.master] & (edges.recruited >= gone[edges.master]))
            table = ctx.tables[self.table_name]
            ctx.tables[self.table_name] = table[keep].reset_index(drop=True)
            edges = Edges(edges.master[keep], edges.sub[keep], edges.recruited[keep])
        stays = np.isnat(gone)
        ctx.tables[self.table_name]["is_active"] = stays[edges.master] & stays[edges.sub]

    def tables(self) -> tuple[str, ...]:
        return (self.table_name,)

    def ddl(self) -> dict[str, str]:
        return {self.table_name: "network_relationships"}

    def column_checks(self) -> dict:
        import pandera.pandas as pa

        return {self.health: [pa.Check.in_range(0, 100)], self.recent_churn: [pa.Check.ge(0)]}

    def row_checks(self) -> list:
        import pandera.pandas as pa

        return [(frozenset([c, self.masters]),
                 pa.Check(lambda df, c=c: df[c].notna() == df[self.masters], name=f"{c} set exactly for masters"))
                for c in (self.health, self.recent_churn)]

    def schemas(self, world, tables) -> dict:
        """network_relationships: a tree from masters to non-master subs, recruited before
        the feature date (within both lives: an invariant, checked with the partners)."""
        import pandera.pandas as pa

        from ..table_checks import member_of

        partners = tables[world.table]
        pids = partners[world.key]
        is_master = partners[self.masters].to_numpy()
        active = world.timeline.active(partners[self.churn_date])
        stayed = pids[is_master & active]
        lo = self._earliest(world)
        if world.timeline.snapshots > 1:       # a grown network's slots: a sub at a time (simulator.stages.growth)
            here = set(pids[~is_master & active])
            fanout = pa.Check(lambda df: df[df["master_affiliate_id"].isin(stayed) & df["sub_affiliate_id"].isin(
                here)].groupby("master_affiliate_id", observed=True).size().le(self.fanout[1]),
                              name=f"at most {self.fanout[1]} subs at once per master (active at the feature date)")
        else:
            fanout = pa.Check(lambda df: df[df["master_affiliate_id"].isin(stayed)].groupby(
                "master_affiliate_id", observed=True).size().between(*self.fanout),
                              name=f"{self.fanout[0]}-{self.fanout[1]} subs per master with a network (active at "
                                   f"the feature date)")
        return {self.table_name: pa.DataFrameSchema({
            "relationship_id": pa.Column("str", unique=True),
            "master_affiliate_id": pa.Column("str", checks=member_of(pids[is_master], "is a master partner")),
            "sub_affiliate_id": pa.Column("str", unique=True,   # a tree: one master per sub
                                          checks=member_of(pids[~is_master], "is a non-master partner")),
            "recruited_at": pa.Column("datetime64[us]", checks=pa.Check.in_range(lo, world.feature_date)),
            "is_active": pa.Column("bool"),
        }, strict=True, ordered=True, name=self.table_name, checks=[fanout])}

    def invariants(self, world, tables) -> list[dict]:
        """Recruitment within both lives; the masters' features recomputed as of the
        feature date from the table and the subs' churn dates (no future information)."""
        t, partners = tables[self.table_name], tables[world.table]
        m, sub = (ids.rows_of(partners[world.key], t[c]) for c in ("master_affiliate_id", "sub_affiliate_id"))
        joined, gone = partners[self.joined].to_numpy(), partners[self.churn_date].to_numpy()
        when = t["recruited_at"].to_numpy()
        after_churn = (~np.isnat(gone[m]) & (when >= gone[m])) | (~np.isnat(gone[sub]) & (when >= gone[sub]))
        observed = when <= world.feature_date
        left, recent = self._gone(world.feature_date, np.asarray(gone, dtype="datetime64[us]"))
        n = len(partners)
        masters = partners[self.masters].to_numpy() & world.timeline.active(gone)   # (at the feature date)
        health, lately = features(Edges(m[observed], sub[observed]), n, masters, left, recent)
        seen = masters | ~partners[self.masters].to_numpy()          # a master gone by then: its features are latent
        got_h = np.where(seen, partners[self.health].to_numpy(dtype=float, na_value=np.nan), np.nan)
        got_r = np.where(seen, partners[self.recent_churn].to_numpy(dtype=float, na_value=np.nan), np.nan)
        differs = lambda a, b: int(np.count_nonzero(~(np.isclose(a, b, atol=0.006) | (np.isnan(a) & np.isnan(b)))))
        return [
            {"invariant": f"{self.table_name}: recruited on or after both partners joined",
             "violations": int(np.count_nonzero((when < joined[m]) | (when < joined[sub])))},
            {"invariant": f"{self.table_name}: recruited before either partner churned",
             "violations": int(np.count_nonzero(after_churn))},
            {"invariant": f"{self.health} recomputed from {self.table_name} as of the feature date",
             "violations": differs(health, got_h)},
            {"invariant": f"{self.recent_churn} recomputed from {self.table_name} as of the feature date",
             "violations": differs(lately, got_r)},
        ]

    def _fan(self, world, tables) -> pd.Series:
        """Subs per master; with a horizon, of the masters active at the feature date (one
        that left earlier recruited no one after it left)."""
        partners = tables[world.table]
        masters = partners[self.masters].to_numpy(dtype=bool)
        if world.timeline.snapshots > 1:              # (a new array: the table's column is left alone)
            masters = masters & world.timeline.active(partners[self.churn_date])
        return tables[self.table_name]["master_affiliate_id"].value_counts().reindex(
            partners.loc[masters, world.key], fill_value=0)

    def review(self, world, tables) -> StageReview:
        """The fan-out, the share of masters without subs and of independent non-masters
        (with a horizon: realized figures of the masters active at the feature date)."""
        fan = self._fan(world, tables)
        full = fan[fan > 0]
        lo, hi = self.fanout
        mean, sd = (lo + hi) / 2, np.sqrt(((hi - lo + 1) ** 2 - 1) / 12)
        k = len(fan)
        w = self.without_subs
        partners = tables[world.table]
        others = int((~partners[self.masters]).sum())
        implied = 1 - (k - round(w * k)) * mean / max(others, 1)
        fanout = Target(f"{self.name}.fanout.mean", mean, full.mean() if len(full) else 0,
                        sd / np.sqrt(max(len(full), 1)), len(full), "mean")
        without = Target(f"{self.name}.without_subs", w, float((fan == 0).mean()) if k else 0.0, 1 / max(k, 1), k,
                         "share", {"note": "exactly round(share x masters), golden masters aside"})
        independent = 1 - len(tables[self.table_name]) / max(others, 1)
        if world.timeline.snapshots > 1:
            # a horizon's networks grow: the masters there who recruit are held to the share at each
            # period's end, each taking a newcomer first (simulator.stages.growth), but a slot's subs
            # come and go, so the fan-out (subs ever recruited) and the non-masters in no network are
            # the growth's, not declared
            return StageReview([Target(f"{self.name}.without_subs", w, float((fan == 0).mean()) if k else 0.0,
                                       1 / max(k, 1), k, "share",
                                       {"note": "of the masters active at the feature date (golden masters "
                                                "among them): round(share x masters) recruit no one, unless "
                                                "more recruit already or no newcomer is left for one"})],
                               {"fanout_mean_at_feature_date": round(float(full.mean()), 6) if len(full) else None,
                                "independent": round(independent, 6)})
        return StageReview([fanout, without, Target(
            f"{self.name}.independent", implied, independent, sd * np.sqrt(max(k, 1)) / max(others, 1), others,
            "share", {"note": "non-masters in no network; declared = what the masters, without_subs and fan-out "
                              "imply"})])

    def figures(self, world, tables) -> list[FigureSpec]:
        return [Histogram(heading="Network fan-out", values=self._fan(world, tables).to_numpy(),
                          bins=np.arange(0, self.fanout[1] + 2) - 0.5, title="subs per master", xlabel="subs",
                          ylabel="masters", color="#9467bd")]

def _owned(health: str, recent: str) -> dict[str, Domain]:
    return {health: Domain("float", nullable=True), recent: Domain("int", nullable=True)}


class NetworkKind:
    name = "network"
    defines_entity = False
    shape = {"kind": None, "table": None, "masters": None, "fanout": {"low": None, "high": None},
             "without_subs": None, "failing": {"share": None, "concentration": None, "spell_days": None},
             "recruited_within_days": None, "recent_days": None,
             "churn_label": None, "churn_date": None, "joined": None, "tenure": None,
             "features": {"health": None, "recent_churn": None}}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        feats = c.get("features") if isinstance(c.get("features"), Mapping) else {}
        return _owned(str(feats.get("health", "subnetwork_avg_health_score")),
                      str(feats.get("recent_churn", "subnetwork_recent_churn_count")))

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Network | None:
        fanout = _pair(p, f"{group}.fanout", c.get("fanout"), 1)
        within = _int(p, f"{group}.recruited_within_days", c.get("recruited_within_days"), 0)
        recent = _int(p, f"{group}.recent_days", c.get("recent_days"), 0)
        w = c.get("without_subs")
        if not _is_number(w) or not 0 <= w < 1:
            p.add(f"{group}.without_subs", f"must be a share in [0, 1) of masters who recruited no one, got {w!r}")
        keys = ("masters", "churn_label", "churn_date", "joined")
        for key in keys:
            if not isinstance(c.get(key), str):
                p.add(f"{group}.{key}", f"must name a column, got {c.get(key)!r}")
        failing = section(p, f"{group}.failing", c.get("failing"), "share, concentration and spell_days") or \
            {"share": 0.0, "concentration": 0.0}
        shares = []
        for key in ("share", "concentration"):
            v = failing.get(key)
            if not _is_number(v) or not 0 <= v <= 1:
                p.add(f"{group}.failing.{key}", f"must be a share in [0, 1], got {v!r}")
            shares.append(v)
        spell = _int(p, f"{group}.failing.spell_days", failing.get("spell_days", 90),
                     ctx.timeline.episode_days if ctx.timeline is not None else 1)
        feats = section(p, f"{group}.features", c.get("features"), "health and recent_churn")
        ctx.names.table(f"{group}.table", c.get("table", "network_relationships"))
        ctx.names.column(f"{group}.features.health", feats.get("health", "subnetwork_avg_health_score"))
        ctx.names.column(f"{group}.features.recent_churn", feats.get("recent_churn", "subnetwork_recent_churn_count"))
        if None in (fanout, within, recent, spell) or not _is_number(w) or \
                not all(isinstance(c.get(k), str) for k in keys) \
                or not all(_is_number(v) for v in shares):
            return None
        return Network(group, self.name, str(c.get("table", "network_relationships")), c["masters"],
                       fanout, float(w), float(shares[0]), float(shares[1]), within, recent, str(feats.get("health", "subnetwork_avg_health_score")),
                       str(feats.get("recent_churn", "subnetwork_recent_churn_count")),
                       c["churn_label"], c["churn_date"], c["joined"], c.get("tenure"), spell)


KIND = NetworkKind()
