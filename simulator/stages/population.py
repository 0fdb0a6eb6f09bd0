"""The population: the partners table, its key, and every declared column.

Kind ``population`` (the ``population`` group): ``table`` and ``id`` name the partners
table and its key; ``columns`` declares each column (a sampler, a derived expression,
bins, a lookup or a date; see docs/architecture.md); ``tiers`` is data for the columns'
interpolations. Each column is a plan step; golden records' values are put in as each
column is produced. Its declared targets: every sampled column's weights, rate or mean
(per `by` group), heavy tails' top-20% share, and bins shares implied by the declared
distribution of the column they bin.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..distributions import SAMPLERS
from ..errors import Problems
from ..plan import Step
from ..spec.checks import _int
from ..spec.columns import _columns
from ..spec.model import ColumnSpec, Domain, IdSpec
from ..spec.shape import Open
from ..stage import BaseStage, ParseContext, RunContext
from ..streams import stream
from . import columns


@dataclass(frozen=True)
class Population(BaseStage):
    name: str
    kind: str
    columns: tuple[ColumnSpec, ...]
    table: str = "partners"                   # (always given: defaults only because BaseStage has them)
    entity: IdSpec | None = None

    def writes(self) -> dict[str, Domain]:
        return {c.name: c.domain for c in self.columns}

    def output_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.keep]

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return [(c.path, c.reads) for c in self.columns]

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        for c in self.columns:
            if c.name in c.reads:
                p.add(c.path, f"reads itself ({c.name!r}): a column is computed from other columns")

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
        values = columns.produce(col, ctx.env, ctx.n, ctx.rng("column", col.name), ctx.world.as_of)
        ctx.env[col.name] = ctx.gold.apply(col.name, values)

    def ddl(self) -> dict[str, str]:
        return {self.table: "partners"}

    def column_checks(self) -> dict:
        return {c.name: columns.range_checks(c) for c in self.columns if c.keep}

    def targets(self, world, tables) -> list[dict]:
        from ..stats import REFERENCE_ROWS, column_targets, share_targets

        partners = tables[self.table]
        out = []
        for col in self.columns:
            if col.kind in ("categorical", "sample") and col.keep:
                out += column_targets(world, col, partners)
        by_name = {c.name: c for c in self.columns}
        for col in self.columns:
            source = by_name.get(col.source)
            # shares implied by the declared distribution of the column binned (when it is
            # drawn from one sampler): a reference draw of that declaration, binned
            if col.kind != "bins" or source is None or source.kind != "sample" or source.by:
                continue
            ref = columns.finish(source, SAMPLERS[source.sampler].draw(
                stream(world.seed, "reference", source.name), REFERENCE_ROWS, **source.params))
            ref_bins = pd.Series(np.asarray(columns.produce(col, {source.name: ref}, ref.size, None, world.as_of),
                                            dtype=object)).value_counts(normalize=True)
            labels = col.domain.categories
            out += share_targets(f"{col.path}.share", labels, [ref_bins.get(k, 0.0) for k in labels],
                                 partners[col.name])
        return out

    def figures(self, world, tables, stats) -> list:
        from ..report import lorenz, rates_by, sample

        partners = sample(tables[self.table])
        heavy = [c.name for c in self.columns if c.sampler in ("pareto", "lognormal") and c.keep]
        labels = [c.name for c in self.columns if c.domain.dtype == "category" and c.keep]
        return [("Commission concentration", lorenz(partners, heavy)),
                # every partner, the early leavers too: the headline's churn rate is the cohort's
                ("Churn by segment (all partners; dashed: their overall rate)",
                 rates_by(partners, world.role("label"), labels))]


SHAPE = {"kind": None, "table": None, "id": {"column": None, "prefix": None, "width": None},
         "tiers": Open(None), "columns": Open(None)}


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
        return Population(group, self.name, tuple(cols), table, id_spec)


KIND = PopulationKind()
