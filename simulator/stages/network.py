"""The master -> sub-affiliate tree and the masters' network features.

Kind ``network``. Subs come from one permutation of the non-masters, cut into consecutive
blocks of ``fanout`` per master until the pool runs out: the same law as repeated
sample-without-replacement, in whole-array operations. Golden masters with pinned network
features first reserve subs whose outcomes realize those pins. The step is *scoped* by the
masters column (simulator.plan): it reads the churn of non-masters and writes masters'
features, so a churn model that reads those features runs in two passes around it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import ids
from ..dates import days_before
from ..errors import ConfigError, Problems
from ..plan import Step
from ..spec.checks import _int, _pair
from ..spec.model import Domain
from ..stage import BaseStage, ParseContext, RunContext

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


def build(spec: "Network", masters: np.ndarray, churned: np.ndarray, recent: np.ndarray,
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
            # the same shares of recently churned, churned and staying non-masters in a
            # larger world: the smallest n_partners whose pool holds every group needed
            have = [np.sum(churned[pool] & recent[pool]), np.sum(churned[pool] & ~recent[pool]),
                    np.sum(~churned[pool])]
            scale = max(k / max(h, 1) for k, h in zip(need, have))
            least = int(np.ceil(n * scale)) + 1
            raise ConfigError([f"{g.path}: the pool of non-masters is too small to give "
                               f"{g.partner_id} {size} subs ({n_churned} churned, {n_recent} "
                               f"recently); raise n_partners (at this world's shares of churned and staying "
                               f"non-masters, about {least} partners give that pool)"])
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


@dataclass(frozen=True)
class Network(BaseStage):
    name: str
    kind: str
    table_name: str
    masters: str
    fanout: tuple[int, int]
    recruited_days: tuple[int, int]
    recent_days: int
    health: str
    recent_churn: str
    churn_label: str                          # the churn label and date it reads (of the subs)
    churn_date: str
    not_before: str | None = None             # a date column (of master and sub) recruitment cannot precede

    def writes(self) -> dict[str, Domain]:
        return _owned(self.health, self.recent_churn)

    def output_columns(self) -> list[str]:
        return [self.health, self.recent_churn]

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        for key, col, dtype, what in (("masters", self.masters, "bool", "a boolean column"),
                                      ("churn_label", self.churn_label, "bool", "a boolean column"),
                                      ("churn_date", self.churn_date, "datetime", "a date column"),
                                      ("not_before", self.not_before, "datetime", "a date column (e.g. created_at)")):
            if col is None:
                continue
            dom = domains.get(col)
            if dom is None or dom.dtype not in (dtype, "any"):
                p.add(f"{self.name}.{key}", f"must name {what}, got {col!r}")

    def steps(self) -> list[Step]:
        reads = {self.masters, self.churn_label, self.churn_date, *([self.not_before] if self.not_before else [])}
        return [Step(self, self.name, frozenset(reads), frozenset(self.writes()), path=self.name,
                     scope_column=self.masters)]

    def run(self, step: Step, ctx: RunContext) -> None:
        env, world = ctx.env, ctx.world
        masters = np.asarray(env[self.masters], dtype=bool)
        churned = np.asarray(env[self.churn_label], dtype=bool)
        recent = churned & (env[self.churn_date] >= days_before(world.as_of, self.recent_days))
        pinned = [GoldenMaster(r.row, r.partner_id, r.path, r.pins.get(self.health), r.pins.get(self.recent_churn))
                  for r in world.golden if self.health in r.pins or self.recent_churn in r.pins]
        edges = build(self, masters, churned, recent, ctx.rng("network", "tree"), pinned)
        env[self.health], env[self.recent_churn] = features(edges, ctx.n, masters, churned, recent)
        when = days_before(world.as_of, edges.days_before)
        if self.not_before:                    # never before master or sub existed
            joined = env[self.not_before]
            when = np.maximum(when, np.maximum(joined[edges.master], joined[edges.sub]))
        pid, m = env[world.key], edges.master.size
        ctx.tables[self.table_name] = pd.DataFrame({
            "relationship_id": ids.uuid4s(ctx.rng("network", "relationship_id"), m),
            "master_affiliate_id": pid.take(edges.master),
            "sub_affiliate_id": pid.take(edges.sub),
            "recruited_at": when,
            "is_active": np.ones(m, dtype=bool),
        })

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
        """network_relationships: a tree from masters to non-master subs, dated before as_of."""
        import pandera.pandas as pa

        from ..schemas import member_of

        partners = tables[world.table]
        pids = partners[world.key]
        is_master = partners[self.masters].to_numpy()
        lo = world.as_of - np.timedelta64(self.recruited_days[1], "D")
        # a partner who joined within the window is recruited when it joined (not_before)
        hi = world.as_of - np.timedelta64(0 if self.not_before else self.recruited_days[0], "D")
        return {self.table_name: pa.DataFrameSchema({
            "relationship_id": pa.Column("str", unique=True),
            "master_affiliate_id": pa.Column("str", checks=member_of(pids[is_master], "is a master partner")),
            "sub_affiliate_id": pa.Column("str", unique=True,   # a tree: one master per sub
                                          checks=member_of(pids[~is_master], "is a non-master partner")),
            "recruited_at": pa.Column("datetime64[us]", checks=pa.Check.in_range(lo, hi)),
            "is_active": pa.Column("bool"),
        }, strict=True, ordered=True, name=self.table_name, checks=[
            pa.Check(lambda df: df.groupby("master_affiliate_id", observed=True).size() <= self.fanout[1],
                     name=f"at most {self.fanout[1]} subs per master"),
        ])}

    def _fan(self, world, tables) -> pd.Series:
        partners = tables[world.table]
        masters = partners.loc[partners[self.masters], world.key]
        return tables[self.table_name]["master_affiliate_id"].value_counts().reindex(masters, fill_value=0)

    def targets(self, world, tables) -> list[dict]:
        from ..stats import target

        fan = self._fan(world, tables)
        full = fan[fan >= self.fanout[0]]
        lo, hi = self.fanout
        sd = np.sqrt(((hi - lo + 1) ** 2 - 1) / 12)
        t = target(f"{self.name}.fanout.mean", (lo + hi) / 2, full.mean() if len(full) else 0,
                   sd / np.sqrt(max(len(full), 1)), len(full), "mean")
        t["note"] = (f"masters with a full block; {int((fan == 0).sum())} of {len(fan)} masters got no subs "
                     f"after the pool ran out")
        return [t]

    def figures(self, world, tables, stats) -> list:
        from ..report import figure, png

        fig = figure(figsize=(5, 3.5))
        ax = fig.subplots()
        ax.hist(self._fan(world, tables).to_numpy(), bins=np.arange(0, self.fanout[1] + 2) - 0.5, color="#9467bd")
        ax.set(title="subs per master", xlabel="subs", ylabel="masters")
        return [("Network fan-out", png(fig))]


def _owned(health: str, recent: str) -> dict[str, Domain]:
    return {health: Domain("float", nullable=True), recent: Domain("int", nullable=True)}


class NetworkKind:
    name = "network"
    defines_entity = False
    shape = {"kind": None, "table": None, "masters": None, "fanout": {"low": None, "high": None},
             "not_before": None, "recruited_days_before": {"low": None, "high": None}, "recent_days": None,
             "churn_label": None, "churn_date": None, "features": {"health": None, "recent_churn": None}}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        feats = c.get("features") or {}
        return _owned(str(feats.get("health", "subnetwork_avg_health_score")),
                      str(feats.get("recent_churn", "subnetwork_recent_churn_count")))

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Network | None:
        fanout = _pair(p, f"{group}.fanout", c.get("fanout"), 0)
        days = _pair(p, f"{group}.recruited_days_before", c.get("recruited_days_before"), 0)
        recent = _int(p, f"{group}.recent_days", c.get("recent_days"), 0)
        for key in ("masters", "churn_label", "churn_date"):
            if not isinstance(c.get(key), str):
                p.add(f"{group}.{key}", f"must name a column, got {c.get(key)!r}")
        feats = c.get("features") or {}
        if None in (fanout, days, recent) or not all(isinstance(c.get(k), str) for k in ("masters", "churn_label", "churn_date")):
            return None
        return Network(group, self.name, str(c.get("table", "network_relationships")), c["masters"],
                       fanout, days, recent, str(feats.get("health", "subnetwork_avg_health_score")),
                       str(feats.get("recent_churn", "subnetwork_recent_churn_count")),
                       c["churn_label"], c["churn_date"], c.get("not_before"))


KIND = NetworkKind()
