"""A table that selects partners columns (the model-ready ``partners_engineered``).

Kind ``projection`` (the ``features`` group): ``columns`` (a list, or a mapping of
section -> list, where a section set to null is left out) and ``carry`` name partners
columns; the table is the key and those columns, the same values as the partners table.
``rows`` (optional) names a boolean column (a helper allowed) selecting the rows: the
cohort at risk at the feature date for ``partners_engineered``. Its schema is the
partners schema's columns and every partners row check whose columns it holds.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import Problems, did_you_mean
from ..spec.model import Domain
from ..stage import BaseStage, ParseContext, RunContext


@dataclass(frozen=True)
class Projection(BaseStage):
    name: str
    kind: str
    table_name: str
    features: tuple[str, ...]
    carry: tuple[str, ...]
    paths: tuple[tuple[str, str], ...] = ()   # (config path, column) of every name, for checks
    rows: str | None = None                   # a boolean column selecting the rows (None: all)

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return [(f"{self.name}.rows", frozenset([self.rows]))] if self.rows else []

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        for path, name in self.paths:
            if name not in domains:
                p.add(path, f"unknown column {name!r}" + did_you_mean(name, domains))
        names = [n for _, n in self.paths]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            p.add(f"{self.name}.columns", f"a column may appear once, repeated: {dupes}")

    def finish(self, ctx: RunContext, partners: pd.DataFrame) -> None:
        names = [ctx.world.key, *self.features, *self.carry]
        if self.rows is None:                  # with copy-on-write a selection shares the arrays
            ctx.tables[self.table_name] = partners[names]
        else:                                  # one take of the selected rows and columns
            rows = np.flatnonzero(np.asarray(ctx.env[self.rows], dtype=bool))
            ctx.tables[self.table_name] = partners[names].take(rows).reset_index(drop=True)

    def tables(self) -> tuple[str, ...]:
        return (self.table_name,)

    def ddl(self) -> dict[str, str]:
        return {self.table_name: "partners_engineered"}

    def schemas(self, world, tables) -> dict:
        import pandera.pandas as pa

        from ..schemas import partners_schema, row_checks

        partners = partners_schema(world)
        names = [world.key, *self.features, *self.carry]
        checks = [check for cols, check in row_checks(world) if cols <= set(names)]
        return {self.table_name: pa.DataFrameSchema({c: partners.columns[c] for c in names}, strict=True,
                                                    ordered=True, name=self.table_name, checks=checks)}

    def figures(self, world, tables, stats) -> list:
        from ..report import features_by_class

        return [("Features by churn class", features_by_class(world, tables[world.table], self.features))]


def _names(p: Problems, path: str, value: Any) -> list[tuple[str, str]]:
    """(path, name) of a list of names, or of a mapping section -> list (null: left out)."""
    if isinstance(value, Mapping):
        return [x for k, v in value.items() if v is not None for x in _names(p, f"{path}.{k}", v)]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        p.add(path, f"must be a list of partners columns, got {value!r}")
        return []
    return [(path, x) for x in value]


class ProjectionKind:
    name = "projection"
    defines_entity = False
    shape = {"kind": None, "table": None, "columns": None, "carry": None, "rows": None}

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Projection | None:
        features = _names(p, f"{group}.columns", c.get("columns"))
        carry = _names(p, f"{group}.carry", c.get("carry"))
        return Projection(group, self.name, str(c.get("table", "partners_engineered")),
                          tuple(n for _, n in features), tuple(n for _, n in carry), tuple(features + carry),
                          c.get("rows"))


KIND = ProjectionKind()
