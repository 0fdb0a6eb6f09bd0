"""The population: the partners table, its key, and every declared column.

Kind ``population`` (the ``population`` group): ``table`` and ``id`` name the partners
table and its key; ``columns`` declares each column (a sampler, a derived expression,
bins, a lookup or a date; see docs/architecture.md); ``tiers`` is data for the columns'
interpolations. Each column is a plan step; golden records' values are put in as each
column is produced. Its declared targets: every sampled column's weights, rate or mean
(per `by` group), heavy tails' top-20% share, and bins shares implied by the declared
distribution of the column they bin.

Steady arrivals (``arrivals: steady`` on an age drawn from an exponential, the tenure). The
partners of a horizon are every partner active in it, and each one's age is its age at the
feature date. Drawn for all of them from the declared exponential, the joining days would
crowd toward the feature date (at 12 snapshots the cohort doubled from the first snapshot to
the last). An exponential age with mean ``scale`` is the age of a steady population whose
partners stay ``scale`` days on average and arrive at a steady rate, ``1/scale`` of its size
a day. So over the D days played (burn-in and snapshots) the arrivals are a share
D / (scale + D) of every partner there: those join on a uniform day of the D; the others
were there at the start, their declared draw their age then (D more at the feature date).
With one snapshot nothing changes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..distributions import SAMPLERS
from ..errors import Problems, did_you_mean
from ..plan import Step
from ..spec.checks import _int
from ..spec.columns import _columns
from ..review.data import REFERENCE_ROWS, AnyTarget, FigureSpec, Lorenz, RatesBy, StageReview, TailTarget, Target
from ..spec.model import ColumnSpec, Domain, IdSpec
from ..spec.shocks import reads as shock_reads
from ..stage import WorldSpec
from ..spec.shape import Open
from ..stage import BaseStage, ParseContext, RunContext
from ..streams import stream
from . import columns
from .moving import Motion

HEAVY_TAILED = ("pareto", "lognormal")   # samplers whose top-20% share is a target, and Lorenz-drawn


def _arrives(col: ColumnSpec, world: WorldSpec) -> bool:
    """Whether ``col`` is a steady arrivals' age here (a horizon's; with one snapshot, its draw)."""
    return col.arrivals == "steady" and world.timeline.played_days > 0


def _moved_off(col: ColumnSpec, world: WorldSpec) -> bool:
    """Whether a drawn column is not its declared draw at the feature date, so neither it nor
    a column binning it is held to the declaration: a shock multiplies it there, it is a
    horizon's steady arrivals' age, or a horizon's histories show what they measure instead
    (a 3-month average of months made from the draws: its declared law is theirs)."""
    return any(s.on(world.feature_date) for s, _ in col.shocks) or _arrives(col, world) or \
        any(col.name in s.measures() for s in world.stages)


def _steady(col: ColumnSpec, values: np.ndarray, ctx: RunContext) -> np.ndarray:
    """Ages at the feature date of a horizon's partners arriving at a steady rate (the
    module's docstring): ``values``, the declared draws, are the ages at the start of those
    already there."""
    days = ctx.world.timeline.played_days
    scale = np.asarray(columns.params_at(col, ctx.env, ctx.n, ctx.world.feature_date)["scale"], dtype=float)
    share = days / (scale + days)              # the arrivals among every partner of the horizon
    u = ctx.rng("column", col.name, "arrival").random(ctx.n)
    return columns.finish(col, np.where(u < share, u / share * days, days + values))


@dataclass(frozen=True)
class Population(BaseStage):
    name: str
    kind: str
    columns: tuple[ColumnSpec, ...]
    table: str = "partners"                   # (always given: defaults only because BaseStage has them)
    entity: IdSpec | None = None
    value: str | None = None                  # the column a retained partner is worth (role 'value')
    snapshots: int = 1                        # the timeline's: with more than one, declared columns move

    @cached_property
    def motion(self) -> Motion:
        return Motion(self.name, self.columns if self.snapshots > 1 else ())

    def varying(self) -> frozenset[str]:
        return self.motion.names

    def state_at(self, ctx: RunContext, when, gone, state) -> dict[str, object]:
        """The moving columns as of ``when`` (simulator.stages.moving)."""
        return self.motion.at(ctx, when)

    def follow(self, ctx: RunContext, state, given) -> dict[str, object]:
        return self.motion.follow(ctx, state, given)

    def follows(self, names: frozenset[str]) -> frozenset[str]:
        return self.motion.follows(names)

    def writes(self) -> dict[str, Domain]:
        return {c.name: c.domain for c in self.columns}

    def output_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.keep]

    def roles(self) -> dict[str, str]:
        return {"value": self.value} if self.value else {}

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        for c in self.columns:
            if c.name in c.reads:
                p.add(c.path, f"reads itself ({c.name!r}): a column is computed from other columns")
            if c.ages and c.domain.dtype not in ("int", "float"):
                p.add(f"{c.path}.ages", f"only a count of days ages (a number), {c.name!r} holds {c.domain.dtype}")
            sampler = SAMPLERS.get(c.sampler) if c.kind == "sample" else None
            if c.persistence < 1 and sampler is not None and (sampler.cdf is None or sampler.ppf is None):
                p.add(f"{c.path}.persistence", f"sampler {c.sampler!r} has no cdf and ppf in the registry "
                      f"(simulator/distributions.py): its draws cannot move on their quantile")
        if self.value is not None and self.value in domains and domains[self.value].dtype not in ("float", "int"):
            p.add(f"{self.name}.value", f"must name a numeric column, got {self.value!r} "
                                        f"({domains[self.value].dtype})")

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        own = [(c.path, c.reads) for c in self.columns]
        return own + ([(f"{self.name}.value", frozenset([self.value]))] if self.value else [])

    def expressions(self) -> list[tuple[str, object, str | None]]:
        """Derived columns: a boolean column's expression must be boolean; a date's a number."""
        kinds = {"derive": "expr", "date": "days_before"}
        return [(f"{c.path}.{kinds[c.kind]}", c.expr,
                 "number" if c.kind == "date" else "bool" if c.domain.dtype == "bool" else None)
                for c in self.columns if c.kind in kinds and c.expr is not None]

    def steps(self) -> list[Step]:
        return [Step(self, c.name, c.reads, frozenset([c.name]), payload=c, path=c.path) for c in self.columns]

    def run(self, step: Step, ctx: RunContext) -> None:
        col = step.payload
        values = columns.produce(col, ctx.env, ctx.n, ctx.rng("column", col.name), ctx.world.as_of,
                                 ctx.world.feature_date)
        if _arrives(col, ctx.world):
            values = _steady(col, values, ctx)
        ctx.env[col.name] = ctx.gold.apply(col.name, values)

    def ddl(self) -> dict[str, str]:
        return {self.table: "partners"}

    def column_checks(self) -> dict:
        return {c.name: columns.range_checks(c) for c in self.columns if c.keep}

    def review(self, world, tables) -> StageReview:
        """Every declared column's targets (weights, rate or mean, per `by` group, and a
        heavy tail's top-20% share), and the shares of bins implied by the declared
        distribution of the column they bin."""
        partners = tables[self.table]
        out = []
        for col in self.columns:
            if col.kind in ("categorical", "sample") and col.keep and not _moved_off(col, world):
                out += column_targets(world, col, partners)
        by_name = {c.name: c for c in self.columns}
        for col in self.columns:
            source = by_name.get(col.source)
            # shares implied by the declared distribution of the column binned (when it is
            # drawn from one sampler): a reference draw of that declaration, binned
            if col.kind != "bins" or source is None or source.kind != "sample" or source.by or \
                    _moved_off(source, world):
                continue
            ref = columns.finish(source, SAMPLERS[source.sampler].draw(
                stream(world.seed, "reference", source.name), REFERENCE_ROWS, **source.params))
            ref_bins = pd.Series(np.asarray(columns.produce(col, {source.name: ref}, ref.size, None, world.as_of),
                                            dtype=object)).value_counts(normalize=True)
            labels = col.domain.categories
            out += share_targets(f"{col.path}.share", labels, [ref_bins.get(k, 0.0) for k in labels],
                                 partners[col.name])
        return StageReview(out)

    def figures(self, world, tables) -> list[FigureSpec]:
        heavy = tuple(c.name for c in self.columns if c.sampler in HEAVY_TAILED and c.keep)
        labels = tuple(c.name for c in self.columns if c.domain.dtype == "category" and c.keep)
        return [Lorenz(heading="Commission concentration", table=self.table, columns=heavy),
                # the headline's cohort: an early leaver's label is true, and would lift every rate
                RatesBy(heading="Churn by segment (the partners active at the feature date; dashed: their rate)",
                        table=self.table, label=world.role("label"), by=labels, churn_date=world.role("event_date"))]


def share_targets(path: str, labels, weights, values: pd.Series, extra=lambda label: {}) -> list[Target]:
    """Each label's declared weight beside its share of ``values`` (a binomial standard
    error); ``extra(label)``: the row's further keys."""
    n = len(values)
    counts = values.value_counts()
    return [Target(f"{path}.{label}", w, counts.get(label, 0) / n if n else 0.0,
                   np.sqrt(w * (1 - w) / max(n, 1)), n, "share", extra(label))
            for label, w in zip(labels, weights)]


def column_targets(world: WorldSpec, col: ColumnSpec, partners: pd.DataFrame) -> list[AnyTarget]:
    """A declared column's targets, per `by` group: a categorical's weights, a bernoulli's
    rate, another sampler's mean from a reference draw of its declaration (and a heavy
    tail's top-20% share)."""
    if col.name not in partners.columns:
        return []
    out: list[AnyTarget] = []
    for label, mask, params, weights in columns.by_groups(col, partners):
        values = partners.loc[mask, col.name]
        if col.kind == "categorical":
            out += share_targets(f"{col.path}{label}.weights", col.domain.categories, weights, values,
                                 lambda k: {"column": col.name, "label": str(k), "conditional": col.by is not None})
        elif col.sampler == "bernoulli":
            p = float(params["p"])
            n = len(values)
            out.append(Target(f"{col.path}{label}.p", p, values.mean() if n else 0,
                              np.sqrt(p * (1 - p) / max(n, 1)), n, "rate"))
        else:
            ref = columns.finish(col, SAMPLERS[col.sampler].draw(
                stream(world.seed, "reference", col.name, label), REFERENCE_ROWS, **params)).astype(float)
            x = values.to_numpy(dtype=float)
            out.append(Target(f"{col.path}{label}.mean", ref.mean(), x.mean() if x.size else 0,
                              ref.std() / np.sqrt(max(x.size, 1)), x.size, "mean"))
            if col.sampler in HEAVY_TAILED:
                out.append(TailTarget(f"{col.path}{label}.top20_share", ref, x))
            top = col.clip[1]
            if top is not None and x.size:      # the heap a bound makes: declared, so shown
                share = float((ref >= top).mean())
                out.append(Target(f"{col.path}{label}.at_max", share, float((x >= top).mean()),
                                  float(np.sqrt(share * (1 - share) / x.size)), x.size, "share",
                                  {"note": f"share at the declared upper bound {top:g} (cap or clip.max): "
                                           f"the draws above it, held there"}))
    return out

def _shocked(p: Problems, group: str, cols: list[ColumnSpec], effects: list) -> list[ColumnSpec]:
    """The columns with the shocks that multiply one of their sampler parameters (each
    effect's target: {group}.columns.<column>.<parameter>), which then read the shocks'
    conditions too."""
    by_name = {c.name: c for c in cols}
    out = {c.name: c for c in cols}
    for shock, effect in effects:
        parts = effect.target.split(".")
        col = by_name.get(parts[2]) if len(parts) == 4 and parts[1] == "columns" else None
        if col is None or col.kind != "sample":
            sampled = [c.name for c in cols if c.kind == "sample"]
            p.add(f"{effect.path}.multiply", f"multiplies a sampled column's parameter, "
                  f"{group}.columns.<column>.<parameter> (sampled: {', '.join(sampled)}), got {effect.target!r}"
                  + did_you_mean(parts[2] if len(parts) > 2 else effect.target, sampled))
            continue
        param = parts[3]
        if param not in col.params:
            p.add(f"{effect.path}.multiply", f"{col.name!r} ({col.sampler}) has no parameter {param!r} "
                  f"(its parameters: {', '.join(col.params)})")
            continue
        # (a probability stays one: the shocks on it may all act at once, so their product counts)
        together = effect.by * float(np.prod([e.by for _, e in out[col.name].shocks if e.target == effect.target]))
        if param == "p" and float(np.max(col.params[param])) * together > 1:
            p.add(f"{effect.path}.by", f"would take {col.name}.p above 1 ({float(np.max(col.params[param])):g} "
                  f"x {together:g}, with the other shocks on it): at most "
                  f"{1 / float(np.max(col.params[param])) / (together / effect.by):.4g}")
            continue
        c = out[col.name]
        out[col.name] = dataclasses.replace(c, shocks=(*c.shocks, (shock, effect)),
                                            reads=c.reads | shock_reads([(shock, effect)]))
    return [out[c.name] for c in cols]


SHAPE = {"kind": None, "table": None, "id": {"column": None, "prefix": None, "width": None},
         "tiers": Open(None), "columns": Open(None), "value": None}


class PopulationKind:
    name = "population"
    defines_entity = True
    shape = SHAPE

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Population | None:
        ids = c.get("id") or {}
        id_spec = IdSpec(str(ids.get("column", "partner_id")), str(ids.get("prefix", "P")),
                         _int(p, f"{group}.id.width", ids.get("width", 5), 1) or 5)
        table = c.get("table")
        ctx.names.table(f"{group}.table", table)
        ctx.names.column(f"{group}.id.column", id_spec.column)
        ctx.names.keys(f"{group}.columns", c.get("columns"))
        table = table if isinstance(table, str) else "partners"    # reported by ctx.names
        reserved = {**ctx.domains, id_spec.column: Domain("str")}
        cols, known = _columns(p, c.get("columns"), reserved, f"{group}.columns")
        ctx.domains.update(known)
        cols = _shocked(p, group, cols, ctx.shock_effects("multiply", group))
        value = c.get("value")
        if value is not None and not isinstance(value, str):
            p.add(f"{group}.value", f"must be a column name, got {value!r}")
            value = None
        return Population(group, self.name, tuple(cols), table, id_spec, value,
                          ctx.timeline.snapshots if ctx.timeline is not None else 1)


KIND = PopulationKind()
