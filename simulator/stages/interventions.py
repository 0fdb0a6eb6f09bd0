"""Interventions: the logging policy's decisions, their effects and their exact truth.

Kind ``interventions``, two steps on the world's timeline. *Decisions* (before the churn
process): in every episode of the label window each partner gets a type from the logging
policy (the first matching ``policy`` row, else ``mix``), and its realized effect: the
declared effect of that type (the first matching row of its table) plus normal noise,
clipped (``uplift_signal``). The churn stage reads those effects. *Outcomes* (after it):
one intervention per episode the partner starts active (1 to ``episodes``, fewer for early
churners), Churned exactly on the episode of its churn; each row carries the truth of its
own outcome (``outcome_probability``: P(Churned) under the type it got, the noise and clips
integrated out, simulator.truth) and ``propensity`` (the policy's probability of that type).
``uplift_truth`` holds, per partner of the cohort, the truth of its first decision:
P(Churned | do(type)) - P(Churned | do(control)), beside the declared effects.
Whole arrays throughout; loops run over types and table rows only.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import ids
from ..dates import DAY
from ..distributions import categorical_codes
from ..errors import Problems, did_you_mean
from ..expr import Expr, evaluate, frame_env
from ..plan import Step
from ..review.data import ArmContrasts, ContrastTable, FigureSpec, Life, Lifelines, StageReview, SummaryTable, Target, TargetBars
from ..spec.checks import _check_weights, _compile, _is_number
from ..spec.model import Domain, Timeline
from ..spec.shape import Each, Open
from ..spec.shocks import Shock, ShockEffect, applied
from ..spec.shocks import reads as shock_reads
from ..stage import BaseStage, ParseContext, RunContext
from ..truth import churn_given, clipped_mean, episode_hazard, hazard_column, outcome_probability


@dataclass(frozen=True)
class EffectRow:
    """One row of a treatment-effect table: a condition (None: always) and its effect."""

    path: str
    expr: Expr | None
    effect: float


@dataclass(frozen=True)
class PolicyRow:
    """One row of the logging policy: a condition (None: always) and its shares by type."""

    path: str
    expr: Expr | None
    shares: np.ndarray


def truth_column(kind: str) -> str:
    """The truth table's column of intervention type ``kind`` (its uplift; ``declared_``
    before it: its declared effect), so a type's name is part of two column names."""
    return f"effect_{kind}"


@dataclass(frozen=True)
class Interventions(BaseStage):
    name: str
    kind: str
    table_name: str
    truth_table: str
    base: str                                 # the churn model's probability (no intervention effect)
    effect_column: str                        # helper it writes: realized effect, partners x episodes
    label: str                                # the churn it reads: label, date, cohort
    churn_date: str
    cohort: str
    noise: tuple[float, float]                # (loc, scale) of the normal noise
    clip: tuple[float, float]
    churned: str
    retained: str
    types: tuple[str, ...]
    control: str                              # the type uplift is measured against
    policy: tuple[PolicyRow, ...]             # the logging policy, first match wins (the last: mix)
    effects: Mapping[str, tuple[EffectRow, ...]]
    timeline: Timeline
    noisy_control: bool = True                # the control's effect gets the noise too (the seed's formula)
    costs: Mapping[str, float] | None = None  # cost of one decision of each type (simulator.evaluate)
    decision_table: str | None = None         # one row per decision: its exact truth for every type
    snapshot_table: str | None = None         # one row per partner per snapshot: its label's truth
    scales: tuple[tuple[Shock, ShockEffect], ...] = ()   # shocks scaling a type's declared effect
    relative: bool = False                    # an effect is a share of the hazard: clip(q (1 + e), 0, 1)
    mean_relative: Mapping[str, float] = field(default_factory=dict)   # type -> declared mean of effect / base

    def policy_shares(self, env: Mapping[str, object], n: int) -> np.ndarray:
        """(n, types): each partner's probability of each type under the logging policy
        (its first matching policy row, else the mix)."""
        return np.stack([r.shares for r in self.policy])[matched_row(self.policy, env, n)]

    def noise_of(self, kind: str) -> tuple[float, float]:
        """(loc, scale) of the noise on a decision of type ``kind``: none on the control
        unless declared noisy (its effect is then exactly 0)."""
        return self.noise if self.noisy_control or kind != self.control else (0.0, 0.0)

    @property
    def shares(self) -> np.ndarray:
        """The default mix (the policy's last row)."""
        return self.policy[-1].shares

    @property
    def condition_reads(self) -> frozenset[str]:
        rows = [r for rows in self.effects.values() for r in rows] + list(self.policy)
        return frozenset().union(*(r.expr.names for r in rows if r.expr is not None),
                                 shock_reads(self.scales))

    def scales_of(self, kind: str) -> list[tuple[Shock, ShockEffect]]:
        """The shocks' effects scaling type ``kind``'s declared effect."""
        return [(s, e) for s, e in self.scales if e.target == f"{self.name}.effects.{kind}"]

    def declared_at(self, state: Mapping[str, object], period: int, n: int) -> np.ndarray:
        """(n, types): each partner's declared effect of each type in ``period``, on its
        state then: the effect table's, scaled by the shocks acting on the period."""
        return self.shocked(expected_effects(self, state, n), period, state)

    def shocked(self, declared: np.ndarray, period: int, state: Mapping[str, object]) -> np.ndarray:
        """The declared effects (n, types) scaled by the shocks acting on ``period``, each
        on the rows its condition holds for in ``state`` (simulator.spec.shocks)."""
        if not self.scales:
            return declared
        day = self.timeline.period_dates()[period]
        for j, kind in enumerate(self.types):
            factor = applied(self.scales_of(kind), day, state, declared.shape[0])
            if factor is not None:
                declared = declared.copy()
                declared[:, j] *= factor
        return declared

    def truth_column(self, kind: str) -> str:
        return truth_column(kind)

    def writes(self) -> dict[str, Domain]:
        return {self.effect_column: Domain("float")}

    def expressions(self) -> list[tuple[str, Expr, str | None]]:
        rows = [r for rows in self.effects.values() for r in rows] + list(self.policy)
        return [(f"{r.path}.when", r.expr, "bool") for r in rows if r.expr is not None]

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        rows = [r for rows in self.effects.values() for r in rows] + list(self.policy)
        return [(r.path, r.expr.names) for r in rows if r.expr is not None] + [
            (f"{self.name}.{key}", frozenset([col])) for key, col in
            (("base", self.base), ("churn.label", self.label), ("churn.date", self.churn_date),
             ("churn.cohort", self.cohort))]

    def steps(self) -> list[Step]:
        helpers = frozenset([self.effect_column])
        return [Step(self, f"{self.name}:decisions", self.condition_reads, helpers, payload="decisions",
                     path=self.name),
                Step(self, f"{self.name}:outcomes", helpers | {self.base, self.label, self.churn_date, self.cohort},
                     frozenset(), payload="outcomes", path=self.name)]

    def run(self, step: Step, ctx: RunContext) -> None:
        (self._decide if step.payload == "decisions" else self._outcomes)(ctx)

    def _decide(self, ctx: RunContext) -> None:
        """Every partner's decision in every period, and its realized effect, on the state at
        the feature date; a period whose state moves is decided again by :meth:`decide_at`
        with the same draws (one uniform for the type, one normal for the noise each)."""
        n, e = ctx.n, self.timeline.periods
        env = ctx.env
        env[f"{self.effect_column}:u"] = ctx.rng("interventions", "type").random(n * e).reshape(n, e)
        env[f"{self.effect_column}:noise"] = ctx.rng("interventions", "noise").standard_normal((n, e))
        env[self.effect_column] = np.empty((n, e))
        env[f"{self.effect_column}:type"] = np.empty((n, e), dtype=np.int32)
        env[f"{self.effect_column}:declared"] = np.empty((n, e, len(self.types)))
        env[f"{self.effect_column}:policy"] = np.empty((n, e, len(self.types)))
        declared, shares = expected_effects(self, env, n), self.policy_shares(env, n)
        for j in range(e):                       # every period on the feature date's state
            self._decide_period(ctx, j, self.shocked(declared, j, env), shares)

    def realized(self, declared: np.ndarray, kind: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The realized effect of type ``kind`` (codes) per partner: its declared effect plus
        the noise of standard normal ``z``, clipped."""
        loc, scale = (np.array(v) for v in zip(*map(self.noise_of, self.types)))
        return np.clip(declared[np.arange(kind.size), kind] + loc[kind] + scale[kind] * z, *self.clip)

    def truth(self, hazard: np.ndarray, declared: np.ndarray) -> np.ndarray:
        """(n, types): P(Churned in the period | do(type)) at ``hazard``, noise and clips
        integrated out (simulator.truth)."""
        return np.stack([outcome_probability(hazard, declared[:, j] + loc, scale, self.clip, self.relative)
                         for j, (loc, scale) in enumerate(map(self.noise_of, self.types))], axis=1)

    def decides(self) -> frozenset[str]:
        return self.condition_reads

    def decide_at(self, ctx: RunContext, period: int, state: Mapping[str, object]) -> None:
        """Decide period ``period`` on ``state`` (the columns as of its start): the logging
        policy's type (inverse CDF of the period's uniform over the partner's shares) and its
        realized effect (the declared effect plus the period's noise, clipped)."""
        self._decide_period(ctx, period, self.declared_at(state, period, ctx.n), self.policy_shares(state, ctx.n))

    def _decide_period(self, ctx: RunContext, period: int, declared: np.ndarray, shares: np.ndarray) -> None:
        env = ctx.env
        kind = categorical_codes(shares, env[f"{self.effect_column}:u"][:, period])
        env[self.effect_column][:, period] = self.realized(declared, kind, env[f"{self.effect_column}:noise"][:, period])
        env[f"{self.effect_column}:type"][:, period] = kind
        env[f"{self.effect_column}:declared"][:, period] = declared
        env[f"{self.effect_column}:policy"][:, period] = shares

    def _outcomes(self, ctx: RunContext) -> None:
        """One row per period a partner starts active (from the first period start after it
        joined, or the horizon's start, to the period it churns in); the truth of every row
        and partner."""
        env, world, tl = ctx.env, ctx.world, self.timeline
        pid = env[world.key]
        effect, kind = env[self.effect_column], env[f"{self.effect_column}:type"]
        declared, policy = env[f"{self.effect_column}:declared"], env[f"{self.effect_column}:policy"]
        gone = np.asarray(env[self.churn_date], dtype="datetime64[us]")
        joined = np.asarray(env[world.role("joined")], dtype="datetime64[us]") if world.role("joined") \
            else np.full(ctx.n, np.datetime64(tl.start, "us"))
        period = np.timedelta64(tl.episode_days, "D")
        present = np.isnat(gone) | (gone > tl.start)          # not gone before the horizon's start
        first = np.maximum(-((tl.start - joined) // period), 0)   # the first period start on or after joining
        churn_period = np.where(present & ~np.isnat(gone), tl.period_of(gone), tl.periods)
        last = np.minimum(churn_period, tl.periods - 1)
        count = np.where(present, np.maximum(last - first + 1, 0), 0)
        partner = np.repeat(np.arange(ctx.n), count)
        ep = np.repeat(first, count) + np.arange(partner.size) - np.repeat(np.cumsum(count) - count, count)
        got = kind[partner, ep]
        # each decision's hazard: the churn process's at that period's start (one per partner
        # and period), else the base probability's, the same in every period
        hazard = env.get(hazard_column(self.base))
        if hazard is None:
            hazard = np.repeat(episode_hazard(np.asarray(env[self.base], dtype=float), tl.episodes)[:, None],
                               tl.periods, axis=1)
        q = hazard[partner, ep]
        truth = self.truth(q, declared[partner, ep])
        date = tl.period_dates()[ep]
        ctx.tables[self.table_name] = pd.DataFrame({
            "intervention_id": ids.uuid4s(ctx.rng("interventions", "id"), partner.size),
            world.key: pid.take(partner),
            "intervention_type": pd.Categorical.from_codes(got, categories=list(self.types)),
            "outcome": pd.Categorical.from_codes((ep == churn_period[partner]).astype(np.int8),
                                                 categories=[self.retained, self.churned]),
            "uplift_signal": np.round(effect[partner, ep], 3),      # the seed's DECIMAL(5,3)
            "intervention_date": date,
            "outcome_recorded_at": date + tl.episode_days * DAY,
            "outcome_probability": truth[np.arange(partner.size), got],
            "propensity": policy[partner, ep, got],
        })
        c = self.types.index(self.control)
        effects = {self.truth_column(t): truth[:, j] - truth[:, c] for j, t in enumerate(self.types)}
        if self.decision_table:
            ctx.tables[self.decision_table] = pd.DataFrame({
                "intervention_id": ctx.tables[self.table_name]["intervention_id"],
                world.key: ctx.tables[self.table_name][world.key],
                "decision_date": date,
                "intervention_type": ctx.tables[self.table_name]["intervention_type"],
                "base_churn_probability": truth[:, c], **effects})
        if self.snapshot_table:
            ctx.tables[self.snapshot_table] = self._snapshot_truth(ctx, gone, joined, present)
        first = ep == tl.snapshots - 1             # the cohort's first decisions of the window, in partner order
        rows = partner[first]
        out = {world.key: pid.take(rows), "base_churn_probability": truth[first, c]}
        out.update({k: v[first] for k, v in effects.items()})
        out.update({f"declared_{self.truth_column(t)}": declared[rows, tl.snapshots - 1, j]
                    for j, t in enumerate(self.types)})
        ctx.tables[self.truth_table] = pd.DataFrame(out)

    def _snapshot_truth(self, ctx: RunContext, gone: np.ndarray, joined: np.ndarray,
                        present: np.ndarray) -> pd.DataFrame:
        """Per snapshot, each partner active at it: the probability of its label (churn in
        the label window after it) before the window's decisions (the world's states through
        the window as they moved, the logging policy's decisions and their noise integrated
        out), and on the world's path (the decisions it got too: the oracle of the churn
        stage's ``truth``)."""
        env, world, tl = ctx.env, ctx.world, self.timeline
        hazard, effect = env[hazard_column(self.base)], env[self.effect_column]
        shares, declared = env[f"{self.effect_column}:policy"], env[f"{self.effect_column}:declared"]
        # each period's churn probability given its state, before its decision is drawn
        before = np.stack([(shares[:, j] * self.truth(hazard[:, j], declared[:, j])).sum(axis=1)
                           for j in range(tl.periods)], axis=1)
        given = churn_given(hazard, effect, self.relative)
        e, frames = tl.episodes, []
        for k, day in enumerate(tl.snapshot_dates()):
            rows = np.flatnonzero(present & tl.active_on(day, joined, gone))
            frames.append(pd.DataFrame({
                world.key: env[world.key].take(rows),
                "snapshot_date": np.full(rows.size, np.datetime64(day, "us")),
                "churn_probability_before_decisions": 1 - np.prod(1 - before[rows, k:k + e], axis=1),
                "churn_probability_on_path": 1 - np.prod(1 - given[rows, k:k + e], axis=1)}))
        return pd.concat(frames, ignore_index=True)

    def tables(self) -> tuple[str, ...]:
        return (self.table_name, self.truth_table, *([self.decision_table] if self.decision_table else []),
                *([self.snapshot_table] if self.snapshot_table else []))

    def ddl(self) -> dict[str, str]:
        return {self.table_name: "interventions", self.truth_table: "uplift_truth",
                **({self.decision_table: "decision_truth"} if self.decision_table else {}),
                **({self.snapshot_table: "snapshot_truth"} if self.snapshot_table else {})}

    def schemas(self, world, tables) -> dict:
        import pandera.pandas as pa

        from ..table_checks import member_of

        partners = tables[world.table]
        dates = list(self.timeline.period_dates())
        after = self.timeline.episode_days * DAY
        interventions = pa.DataFrameSchema({
            "intervention_id": pa.Column("str", unique=True),
            world.key: pa.Column("str", checks=member_of(partners[world.key], "is a partner")),
            "intervention_type": pa.Column("category", checks=pa.Check.isin(list(self.types))),
            "outcome": pa.Column("category", checks=pa.Check.isin([self.retained, self.churned])),
            "uplift_signal": pa.Column("float64", checks=pa.Check.in_range(*self.clip)),
            "intervention_date": pa.Column("datetime64[us]", checks=pa.Check.isin(dates)),
            "outcome_recorded_at": pa.Column("datetime64[us]"),
            "outcome_probability": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
            "propensity": pa.Column("float64", checks=[pa.Check.gt(0), pa.Check.le(1)]),
        }, strict=True, ordered=True, name=self.table_name, checks=[
            pa.Check(lambda df: df["outcome_recorded_at"] - df["intervention_date"] == after,
                     name=f"outcome recorded {self.timeline.episode_days} days after the intervention"),
        ])
        cohort = self.timeline.active(partners[self.churn_date])
        cols = {
            world.key: pa.Column("str", unique=True, checks=member_of(partners.loc[cohort, world.key],
                                                                      "is in the cohort")),
            "base_churn_probability": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
        }
        for kind in self.types:
            cols[self.truth_column(kind)] = pa.Column("float64", checks=pa.Check.in_range(-1, 1))
        for kind in self.types:
            declared = [r.effect for r in self.effects[kind]] + ([] if self.effects[kind][-1].expr is None else [0.0])
            for _, effect in self.scales_of(kind):
                declared += [d * effect.by for d in declared]      # (a shock's scaled effect, or two shocks')
            cols[f"declared_{self.truth_column(kind)}"] = pa.Column("float64", checks=pa.Check.isin(declared))
        truth = pa.DataFrameSchema(cols, strict=True, ordered=True, name=self.truth_table)
        out = {self.table_name: interventions, self.truth_table: truth}
        if self.decision_table:
            table = tables[self.table_name]
            # (Series.equals: values and dtype, compared in Arrow or numpy, not object by object)
            same = lambda col: pa.Check(lambda s: s.reset_index(drop=True).equals(table[col].reset_index(drop=True)),
                                        name=f"{col} of the {self.table_name} row of the same position")
            out[self.decision_table] = pa.DataFrameSchema({
                # (unique because interventions' ids are, and these are the same, row by row)
                "intervention_id": pa.Column("str", checks=same("intervention_id")),
                world.key: pa.Column("str", checks=same(world.key)),
                "decision_date": pa.Column("datetime64[us]", checks=same("intervention_date")),
                "intervention_type": pa.Column("category", checks=same("intervention_type")),
                "base_churn_probability": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
                **{self.truth_column(k): pa.Column("float64", checks=pa.Check.in_range(-1, 1)) for k in self.types},
            }, strict=True, ordered=True, name=self.decision_table)
        if self.snapshot_table:
            out[self.snapshot_table] = pa.DataFrameSchema({
                world.key: pa.Column("str", checks=member_of(partners[world.key], "is a partner")),
                "snapshot_date": pa.Column("datetime64[us]", checks=pa.Check.isin(list(self.timeline.snapshot_dates()))),
                "churn_probability_before_decisions": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
                "churn_probability_on_path": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
            }, strict=True, ordered=True, name=self.snapshot_table, unique=[world.key, "snapshot_date"])
        return out

    def invariants(self, world, tables) -> list[dict]:
        """Every intervention inside its partner's life; its outcome is the partner's churn."""
        table, partners = tables[self.table_name], tables[world.table]
        idx = ids.rows_of(partners[world.key], table[world.key])
        joined = partners[world.role("joined")].to_numpy()[idx]
        gone = partners[self.churn_date].to_numpy()[idx]
        date = table["intervention_date"].to_numpy()
        window_end = table["outcome_recorded_at"].to_numpy()
        churned = (table["outcome"] == self.churned).to_numpy()
        in_window = ~np.isnat(gone) & (gone > date) & (gone <= window_end)
        last = np.r_[idx[1:] != idx[:-1], True]       # rows are grouped by partner, in time order
        n_churned = np.bincount(idx, weights=churned, minlength=len(partners))
        out = []
        if self.decision_table:
            dt = tables[self.decision_table]
            got = dt["intervention_type"].to_numpy()
            received = dt["base_churn_probability"].to_numpy() + np.select(
                [got == k for k in self.types], [dt[self.truth_column(k)].to_numpy() for k in self.types])
            out.append({"invariant": f"{self.decision_table}: base + the received type's effect is the "
                                     f"{self.table_name} row's outcome_probability (to 1e-9)",
                        "violations": int(np.count_nonzero(np.abs(received - table["outcome_probability"].to_numpy())
                                                           > 1e-9))})
        return out + [
            {"invariant": f"{self.table_name}: dated on or after the partner joined",
             "violations": int(np.count_nonzero(date < joined))},
            {"invariant": f"{self.table_name}: dated before the partner churned",
             "violations": int(np.count_nonzero(~np.isnat(gone) & (date >= gone)))},
            {"invariant": f"{self.table_name}: outcome {self.churned} exactly when the churn falls in its outcome window",
             "violations": int(np.count_nonzero(churned != in_window))},
            {"invariant": f"{self.table_name}: at most one {self.churned} outcome per partner, on its last intervention",
             "violations": int(np.count_nonzero(n_churned > 1) + np.count_nonzero(churned & ~last))},
        ]

    def review(self, world, tables) -> StageReview:
        """The policy's shares, and per type and effect-table row: the realized churn rate
        beside the mean truth of the rows (outcome_probability), and the mean realized
        effect beside its exact expectation (the clipped noise integrated out)."""
        table, partners = tables[self.table_name], tables[world.table]
        if self.condition_reads & frozenset().union(*(s.varying() for s in world.stages)):
            # the partners table holds the state at the feature date: where a condition reads
            # a column that moves, the later decisions were taken on another state
            table = table[(table["intervention_date"] == self.timeline.feature_date).to_numpy()]
        reads = self.condition_reads & set(partners.columns)
        env = frame_env(partners, reads)
        pidx = ids.rows_of(partners[world.key], table[world.key])
        kinds = table["intervention_type"].to_numpy()
        out = []
        if all(r.expr is None or r.expr.names <= reads for r in self.policy):
            shares = self.policy_shares(env, len(partners))[pidx]
            m = len(table)
            for j, kind in enumerate(self.types):   # expected share: the mean of each row's policy share
                e = shares[:, j]
                out.append(Target(f"{self.name}.mix.{kind}", float(e.mean()) if m else 0.0,
                                  float((kinds == kind).mean()) if m else 0.0,
                                  float(np.sqrt((e * (1 - e)).sum()) / max(m, 1)), m, "share"))
        churned = (table["outcome"] == self.churned).to_numpy()
        prob = table["outcome_probability"].to_numpy()
        signal = table["uplift_signal"].to_numpy()
        for kind in self.types:
            rows = self.effects[kind]
            if any(r.expr is not None and not r.expr.names <= reads for r in rows) or \
                    not shock_reads(self.scales_of(kind)) <= reads:
                continue                          # reads a helper column that is not in the table
            which = matched_row(rows, env, len(partners))[pidx]
            of_kind = kinds == kind
            factor = self._review_scale(kind, table, env, len(partners), pidx)
            for i, row in enumerate(rows):
                sel = of_kind & (which == i)
                k = int(sel.sum())
                seg = row.path.removeprefix(f"{self.name}.effects.")
                condition = f"{kind}: {row.expr.source if row.expr is not None else 'otherwise'}"
                p = prob[sel]
                out.append(Target(f"{row.path}.outcome", float(p.mean()) if k else 0.0,
                                  float(churned[sel].mean()) if k else 0.0,
                                  float(np.sqrt((p * (1 - p)).sum()) / max(k, 1)), k, "rate",
                                  {"row": seg, "condition": condition,
                                   "note": "realized churn rate vs the mean of outcome_probability (the exact truth)"}))
                loc, scale = self.noise_of(kind)
                mean = float(clipped_mean(np.float64(row.effect + loc), scale, np.float64(self.clip[0]),
                                          np.float64(self.clip[1])))
                scaled = factor is not None and k and bool((factor[sel] != 1).any())
                if scaled:                     # a shock scaled some of them: each row's own expectation
                    mean = float(clipped_mean(row.effect * factor[sel] + loc, scale, self.clip[0], self.clip[1]).mean())
                out.append(Target(f"{row.path}.effect", mean, float(signal[sel].mean()) if k else 0.0,
                                  scale / np.sqrt(max(k, 1)), k, "mean",
                                  {"row": seg, "condition": condition,
                                   "note": f"uplift_signal: the declared {row.effect}"
                                           f"{' (scaled by the shocks where they act)' if scaled else ''} plus "
                                           f"noise, clipped (expectation exact)"}))
        if self.decision_table in tables:
            out += self._review_relative(world, tables[self.decision_table])
        realized = {}
        if self.decision_table in tables:      # every decision's truth beside what its arms would say
            realized["logging_policy"] = ArmContrasts(
                tables[self.table_name], tables[self.decision_table], self.types, self.control,
                tuple(map(self.truth_column, self.types)), "base_churn_probability", "intervention_type",
                "outcome", self.churned, "propensity", world.key)
        return StageReview(out, realized)

    def _review_relative(self, world, truth: pd.DataFrame) -> list[Target]:
        """Each declared mean relative effect beside the mean of ``effect_<type> / base`` over
        every decision of decision_truth (base above 0), its standard error clustered by
        partner (a partner's decisions share its state)."""
        base = truth["base_churn_probability"].to_numpy(dtype=float)
        keep = base > 0
        codes = pd.factorize(truth[world.key].to_numpy()[keep])[0]
        out = []
        for kind, declared in self.mean_relative.items():
            r = truth[self.truth_column(kind)].to_numpy(dtype=float)[keep] / base[keep]
            m = r.size
            mean = float(r.mean()) if m else 0.0
            resid = np.bincount(codes, r - mean) if m else np.zeros(0)       # per partner: its deviations' sum
            se = float(np.sqrt((resid ** 2).sum()) / max(m, 1))
            out.append(Target(f"{self.name}.mean_relative_effect.{kind}", declared, mean, se, m, "mean",
                              {"note": f"{self.decision_table} rows: {self.truth_column(kind)} / base_churn_probability "
                                       f"(base above 0), the SE clustered by partner"}))
        return out

    def _review_scale(self, kind: str, table: pd.DataFrame, env: Mapping[str, object], n: int,
                      pidx: np.ndarray) -> np.ndarray | None:
        """Per row of ``table`` (decisions), the factor the shocks scaled its type's declared
        effect by (the partners' state ``env``, at the row's decision date), or None."""
        effects = self.scales_of(kind)
        if not effects:
            return None
        dates = table["intervention_date"].to_numpy(dtype="datetime64[D]")
        out = np.ones(len(table))
        for day in np.unique(dates):
            factor = applied(effects, day, env, n)
            if factor is not None:
                at = dates == day
                out[at] = factor[pidx[at]]
        return out

    def figures(self, world, tables) -> list[FigureSpec]:
        """A few partners' timelines, each arm's realized and true outcomes, and each
        effect-table row's truth beside its realized churn (from its stats.json targets)."""
        return [self._timeline(world, tables),
                self._arms(tables),
                ContrastTable(heading="The logging policy: each type's true effect beside its naive and "
                                      "weighted (IPW) estimates", key="logging_policy"),
                TargetBars(heading="Interventions by effect-table row", stage=self.name, suffix=".outcome",
                           label_key="condition", declared="true (mean outcome_probability)",
                           realized="realized churn rate",
                           title="outcomes by intervention type and effect-table row: truth vs realized",
                           value_label="P(Churned) in the episode")]

    def _arms(self, tables) -> SummaryTable:
        """Per type: its decisions, realized churn rate beside
        the mean truth, and on the first decisions (randomized by a random policy) the
        realized difference to the control beside the mean true effect."""
        iv, truth = tables[self.table_name], tables[self.truth_table]
        churned = (iv["outcome"] == self.churned).to_numpy()
        kinds = iv["intervention_type"].to_numpy()
        first = (iv["intervention_date"] == self.timeline.feature_date).to_numpy()
        control = first & (kinds == self.control)
        rows = []
        for kind in self.types:
            sel, arm = kinds == kind, first & (kinds == kind)
            diff = churned[arm].mean() - churned[control].mean() if arm.any() and control.any() else float("nan")
            rows.append((kind, int(sel.sum()), float(churned[sel].mean()) if sel.any() else float("nan"),
                         float(iv["outcome_probability"].to_numpy()[sel].mean()) if sel.any() else float("nan"),
                         float(diff), float(truth[self.truth_column(kind)].mean())))
        return SummaryTable(heading="Interventions: realized vs true outcomes, arm by arm",
                            head=("type", "decisions", "realized churn rate", "true (mean outcome_probability)",
                                  f"first decision: realized - {self.control}", "true effect (mean of uplift_truth)"),
                            rows=tuple(rows))

    def _timeline(self, world, tables) -> Lifelines:
        """A handful of partners on the axis: joining, the feature date, each decision
        (filled: Churned), the churn; one that left before the feature date (three, over a
        horizon of snapshots: its decisions every period)."""
        partners, iv = tables[world.table], tables[self.table_name]
        joined, gone = world.role("joined"), self.churn_date
        tl = self.timeline
        f = tl.feature_date
        in_horizon = tl.snapshots == 1 or (partners[gone] > tl.start)       # (not the burn-in's leavers)
        left_early = partners.index[~tl.active(partners[gone]) & in_horizon][:1 if tl.snapshots == 1 else 3].tolist()
        churners = partners.index[partners[gone] > f][:4].tolist()
        stayers = partners.index[partners[gone].isna()][:3].tolist()
        picks = left_early + churners + stayers
        picked = iv[iv[world.key].isin(partners.loc[picks, world.key])]   # a handful of partners' rows
        groups = picked.groupby(world.key, observed=True, sort=False).indices
        lives = []
        for i in picks:
            row = partners.loc[i]
            left = pd.notna(row[gone])
            events = tuple((r["intervention_date"], r["intervention_type"], r["outcome"] == self.churned)
                           for r in (picked.iloc[j] for j in groups.get(row[world.key], [])))
            lives.append(Life(row[world.key], row[joined], row[gone] if left else world.as_of,
                              row[gone] if left else None, events))
        return Lifelines(heading="The world's timeline: a few partners", lives=tuple(lives), feature_date=f,
                        as_of=world.as_of, start=min(f - 120 * DAY, tl.start - 30 * DAY), types=self.types,
                        title="joining, feature date, decisions (filled: Churned) and churn")


def matched_row(rows: tuple[EffectRow, ...], env: Mapping[str, object], n: int) -> np.ndarray:
    """Per partner, the index of the first effect row whose condition holds (-1: none)."""
    masks = [np.ones(n, dtype=bool) if r.expr is None
             else np.asarray(evaluate(r.expr, env, n), dtype=bool) for r in rows]
    return np.select(masks, np.arange(len(rows)), default=-1)


def expected_effects(spec: "Interventions", env: Mapping[str, object], n: int) -> np.ndarray:
    """(n, types) matrix: each partner's declared effect of each intervention type
    (0 where no row matches)."""
    out = np.zeros((n, len(spec.types)))
    for j, kind in enumerate(spec.types):
        rows = spec.effects[kind]
        effects = np.array([r.effect for r in rows] + [0.0])     # index -1 -> no match
        out[:, j] = effects[matched_row(rows, env, n)]
    return out


def _effect_rows(p: Problems, path: str, rows: Any) -> tuple[EffectRow, ...] | None:
    if not isinstance(rows, (list, tuple)) or not rows:
        p.add(path, "must be a non-empty list of {when: <condition>, effect: <number>} rows")
        return None
    out = []
    for i, row in enumerate(rows):
        rpath = f"{path}[{i}]"
        if not isinstance(row, Mapping) or not _is_number(row.get("effect")):
            p.add(rpath, f"needs a numeric 'effect' (and optionally 'when'), got {row!r}")
            continue
        expr = _compile(p, f"{rpath}.when", row["when"]) if "when" in row else None
        if "when" in row and expr is None:
            continue
        if expr is None and i < len(rows) - 1:
            p.add(rpath, "a row without 'when' matches everything, so it must be the last row")
        out.append(EffectRow(rpath, expr, float(row["effect"])))
    return tuple(out)


def _policy(p: Problems, path: str, rows: Any, types: list[str]) -> list[PolicyRow]:
    """Targeted rows of the logging policy: {when, mix} each, in priority order."""
    if rows is None:
        return []
    if not isinstance(rows, (list, tuple)):
        p.add(path, "must be a list of {when: <condition>, mix: {type: share}} rows")
        return []
    out = []
    for i, row in enumerate(rows):
        rpath = f"{path}[{i}]"
        if not isinstance(row, Mapping) or "when" not in row or "mix" not in row:
            p.add(rpath, f"needs 'when' (a condition) and 'mix' (type -> share, summing to 1), got {row!r}")
            continue
        expr = _compile(p, f"{rpath}.when", row["when"])
        mix = _check_weights(p, f"{rpath}.mix", row["mix"])
        if mix is not None and types:          # (no types: the world's mix failed, said there)
            for kind in sorted(set(mix) - set(types)):
                p.add(f"{rpath}.mix.{kind}", f"unknown intervention type {kind!r}" + did_you_mean(kind, types))
        if expr is not None and mix is not None and set(mix) <= set(types):
            out.append(PolicyRow(rpath, expr, np.array([mix.get(t, 0.0) for t in types])))
    return out


class InterventionsKind:
    name = "interventions"
    defines_entity = False
    shape = {"kind": None, "table": None, "truth_table": None, "decision_table": None, "snapshot_table": None,
             "base": None,
             "effect_column": None,
             "churn": {"label": None, "date": None, "cohort": None}, "control": None,
             "noise": {"loc": None, "scale": None, "control": None}, "clip": {"min": None, "max": None},
             "costs": Open(None), "relative": None, "mean_relative_effect": Open(None),
             "outcomes": {"churned": None, "retained": None}, "mix": Open(None),
             "policy": Each({"when": None, "mix": Open(None)}),
             "effects": Open(Each({"when": None, "effect": None}))}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        return {str(c.get("effect_column", "realized_effect")): Domain("float")}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Interventions | None:
        before = len(p.items)
        mix = _check_weights(p, f"{group}.mix", c.get("mix"))
        effects_cfg = c.get("effects")
        effects: dict[str, tuple[EffectRow, ...]] = {}
        if not isinstance(effects_cfg, Mapping):
            p.add(f"{group}.effects", "must map each intervention type to its effect rows")
            effects_cfg = {}
        for kind, rows in effects_cfg.items():
            path = f"{group}.effects.{kind}"
            if mix is not None and str(kind) not in mix:
                p.add(path, f"unknown intervention type {kind!r}: not in {group}.mix" + did_you_mean(str(kind), mix))
                continue
            parsed = _effect_rows(p, path, rows)
            if parsed is not None:
                effects[str(kind)] = parsed
        for kind in (mix or {}):
            if kind not in effects_cfg:
                p.add(f"{group}.effects", f"no effect rows for {kind!r} (declared in {group}.mix)")
        types = list(mix or {})
        policy = _policy(p, f"{group}.policy", c.get("policy"), types)
        control = c.get("control", "none")
        if mix is not None and control not in mix:
            p.add(f"{group}.control", f"must be one of the types in {group}.mix ({', '.join(types)}), "
                  f"got {control!r}" + did_you_mean(str(control), types))
        noise = c.get("noise") or {}
        loc, scale = noise.get("loc", 0.0), noise.get("scale")
        if not _is_number(loc) or not _is_number(scale) or scale < 0:
            p.add(f"{group}.noise", f"needs loc (a number) and scale (a number >= 0), got {noise!r}")
        noisy_control = noise.get("control", True)
        if not isinstance(noisy_control, bool):
            p.add(f"{group}.noise.control", f"must be true (the control's effect is noisy too, as in the "
                  f"seed) or false (exactly 0), got {noisy_control!r}")
        costs = c.get("costs")
        if costs is not None:
            if not isinstance(costs, Mapping):
                p.add(f"{group}.costs", f"must map intervention type -> cost of one decision, got {costs!r}")
                costs = None
            else:
                for kind, cost in costs.items():
                    if mix is not None and str(kind) not in mix:   # (no mix: its types are unknown, said there)
                        p.add(f"{group}.costs.{kind}", "unknown intervention type" + did_you_mean(str(kind), types))
                    elif not _is_number(cost) or cost < 0:
                        p.add(f"{group}.costs.{kind}", f"must be a cost >= 0, got {cost!r}")
        mean_relative, declared = {}, c.get("mean_relative_effect") or {}
        if not isinstance(declared, Mapping):
            p.add(f"{group}.mean_relative_effect", f"must map intervention type -> its declared mean relative "
                  f"effect per decision, got {declared!r}")
            declared = {}
        for kind, value in declared.items():
            if value is None or mix is None:       # (null: not declared; no mix: its types are unknown, said there)
                continue
            if str(kind) not in mix:
                p.add(f"{group}.mean_relative_effect.{kind}", "unknown intervention type" + did_you_mean(str(kind), types))
            elif not _is_number(value) or not -1 <= value <= 1:
                p.add(f"{group}.mean_relative_effect.{kind}", f"must be a mean relative change of the hazard in "
                      f"[-1, 1] (-0.12: a decision of this type cuts it by 12% on average), got {value!r}")
            else:
                mean_relative[str(kind)] = float(value)
        clip = c.get("clip") or {}
        lo, hi = clip.get("min"), clip.get("max")
        if not (_is_number(lo) and _is_number(hi)):
            p.add(f"{group}.clip", f"needs numeric min and max, got {clip!r}")
        elif lo >= hi:
            p.add(f"{group}.clip", f"min {lo} must be below max {hi}")
        relative = c.get("relative", False)
        if not isinstance(relative, bool):
            p.add(f"{group}.relative", f"must be true (an effect is a share of the hazard: churn with "
                  f"probability q (1 + e)) or false (added to it: q + e, the seed's), got {relative!r}")
        elif relative and _is_number(lo) and lo < -1:
            p.add(f"{group}.clip.min", f"must be at least -1 with relative effects (an effect below -1 "
                  f"would make the churn probability q (1 + e) negative), got {lo}")
        outcomes = c.get("outcomes") or {}
        for key in ("churned", "retained"):
            if not isinstance(outcomes.get(key), str) or not outcomes.get(key):
                p.add(f"{group}.outcomes.{key}", f"must be an outcome label, got {outcomes.get(key)!r}")
        churn = c.get("churn") or {}
        for key, value in (("base", c.get("base")), *((f"churn.{k}", churn.get(k)) for k in ("label", "date", "cohort"))):
            if not isinstance(value, str):
                p.add(f"{group}.{key}", f"must name a column of the churn process, got {value!r}")
        ctx.names.table(f"{group}.table", c.get("table", "interventions"))
        ctx.names.table(f"{group}.truth_table", c.get("truth_table", "uplift_truth"))
        decision_table, snapshot_table = c.get("decision_table"), c.get("snapshot_table")
        if decision_table is not None:             # null: no table of every decision's truth
            ctx.names.table(f"{group}.decision_table", decision_table)
        if snapshot_table is not None:             # null: no table of every snapshot's label truth
            ctx.names.table(f"{group}.snapshot_table", snapshot_table)
        ctx.names.column(f"{group}.effect_column", c.get("effect_column", "realized_effect"))
        for kind in types:                     # each type's columns of the truth table
            for column in (truth_column(kind), f"declared_{truth_column(kind)}"):
                ctx.names.column(f"{group}.mix.{kind}", column, f"a column of {group}.truth_table for type {kind!r}")
        scales = ctx.shock_effects("scale", group)
        for _, effect in scales:
            if effect.target not in {f"{group}.effects.{t}" for t in types}:
                p.add(f"{effect.path}.scale", f"scales an intervention type's declared effect: one of "
                      f"{', '.join(f'{group}.effects.{t}' for t in types)}, got {effect.target!r}"
                      + did_you_mean(effect.target, [f"{group}.effects.{t}" for t in types]))
        if len(p.items) > before or ctx.timeline is None:
            return None
        return Interventions(group, self.name, str(c.get("table", "interventions")),
                             str(c.get("truth_table", "uplift_truth")), c["base"],
                             str(c.get("effect_column", "realized_effect")), churn["label"], churn["date"],
                             churn["cohort"], (float(loc), float(scale)), (float(lo), float(hi)),
                             outcomes["churned"], outcomes["retained"], tuple(types), str(control),
                             (*policy, PolicyRow(f"{group}.mix", None, np.array(list(mix.values())))),
                             effects, ctx.timeline, noisy_control is not False,
                             {str(k): float(v) for k, v in costs.items()} if isinstance(costs, Mapping) else None,
                             str(decision_table) if decision_table is not None else None,
                             str(snapshot_table) if snapshot_table is not None else None, tuple(scales),
                             relative is True, mean_relative)


KIND = InterventionsKind()
