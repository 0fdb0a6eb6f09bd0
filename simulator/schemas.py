"""pandera schemas for the output tables, checked before any file is published.

The partners table's structure comes from the stages' column domains (dtypes, categories,
nullability) plus each stage's column and row checks; every other table's schema comes
from the stage that writes it. Allowed values come from the spec, so a new region, tier
or scenario declared in YAML needs no schema edit.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

# pandera looks for geopandas on every dtype it resolves (about 4 ms a failed import, 17
# per block validated); where geopandas is not installed, say so once
if "geopandas" not in sys.modules and importlib.util.find_spec("geopandas") is None:
    sys.modules["geopandas"] = None            # `import geopandas` then fails at once
import pandera.pandas as pa  # noqa: E402
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from . import invariants, threads
from .errors import ValidationError
from .spec import Domain
from .stage import WorldSpec

DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "datetime": "datetime64[us]",
          "str": "str", "any": None}


def _column(domain: Domain, checks: list[pa.Check]) -> pa.Column:
    if domain.dtype == "category":
        return pa.Column("category", checks=[pa.Check.isin(list(domain.categories)), *checks])
    dtype = "Int64" if domain.dtype == "int" and domain.nullable else DTYPES[domain.dtype]
    return pa.Column(dtype, checks=checks, nullable=domain.nullable)


def row_checks(spec: WorldSpec) -> list[tuple[frozenset[str], pa.Check]]:
    """Every stage's partners-table row checks, with the columns each reads."""
    return [rc for s in spec.stages for rc in s.row_checks()]


_PARTNERS: dict[int, tuple[tuple, pa.DataFrameSchema]] = {}


def partners_schema(spec: WorldSpec) -> pa.DataFrameSchema:
    """The partners table: every stage's columns with their domains and checks. Built once
    per world: every block's spec shares the world's stages, and the schema reads nothing else."""
    cached = _PARTNERS.get(id(spec.stages))
    if cached is not None and cached[0] is spec.stages:
        return cached[1]
    schema = _partners_schema(spec)
    _PARTNERS.clear()                          # one world at a time; the tuple is kept to pin its id
    _PARTNERS[id(spec.stages)] = (spec.stages, schema)
    return schema


def _partners_schema(spec: WorldSpec) -> pa.DataFrameSchema:
    domains = spec.domains()
    extra: dict[str, list] = {}
    for s in spec.stages:
        for name, checks in s.column_checks().items():
            extra.setdefault(name, []).extend(checks)
    cols = {name: _column(domains[name], extra.get(name, [])) for name in spec.output_columns}
    cols[spec.key] = pa.Column("str", unique=True)
    return pa.DataFrameSchema(cols, strict=True, ordered=True, name=spec.table,
                              checks=[check for _, check in row_checks(spec)])


def arrow_check(name: str, test) -> pa.Check:
    """A row check computed by an Arrow kernel on the column as strings (hashing in C++,
    not through Python objects); ``test`` maps the Arrow array to a boolean array."""

    def check(s: pd.Series) -> pd.Series:
        found = test(pyarrow.array(s, type=pyarrow.string()))
        return pd.Series(found.to_numpy(zero_copy_only=False), index=s.index)

    return pa.Check(check, name=name)


def member_of(keys: pd.Series, name: str) -> pa.Check:
    """A foreign-key check: every value is one of ``keys``."""
    allowed = pyarrow.array(keys, type=pyarrow.string())
    return arrow_check(name, lambda values: pc.is_in(values, value_set=allowed))


def table_schemas(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> dict[str, pa.DataFrameSchema]:
    """Every table's schema: the partners table's, then each stage's tables'."""
    out = {spec.table: partners_schema(spec)}
    for s in spec.stages:
        out.update(s.schemas(spec, tables))
    return out


def validate(name: str, frame: pd.DataFrame, schema: pa.DataFrameSchema) -> None:
    """Raise ValidationError naming every failed column and check, with example rows."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        lines = [f"table '{name}' failed validation ({len(cases)} failure cases):"]
        for check, group in cases.groupby("check", dropna=False, sort=False):
            cols = group["column"].astype(str).unique().tolist()
            where = f"column {cols[0]}" if len(cols) == 1 else "row check"
            rows = sorted(set(group["index"].dropna().astype(int).tolist()))
            values = group["failure_case"].tolist()[:5] if len(cols) == 1 else []
            lines.append(f"  {where}, check {check}: {len(rows) or len(group)} rows, "
                         f"e.g. rows {rows[:5]}" + (f" values {values}" if values else ""))
        raise ValidationError("\n".join(lines)) from None


def validate_tables(spec: WorldSpec, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Check every generated table against its schema (the child tables in parallel), then
    the world's invariants across them; returns the invariants' counts (all zero)."""
    schemas = table_schemas(spec, tables)
    validate(spec.table, tables[spec.table], schemas.pop(spec.table))
    children = schemas
    missing = sorted(set(tables) - set(children) - {spec.table})
    if missing:
        raise ValidationError(f"table(s) {', '.join(missing)} have no schema: every stage must give "
                              f"one for each table it writes")
    # Arrow's hashing kernels release the GIL, so two threads use both cores (a worker
    # process, whose siblings fill the cores, checks them in turn)
    if threads.count() == 1:
        for name, schema in children.items():
            validate(name, tables[name], schema)
    else:
        with ThreadPoolExecutor(max_workers=threads.count()) as pool:
            futures = [pool.submit(validate, name, tables[name], schema) for name, schema in children.items()]
            for future in futures:
                future.result()
    results = invariants.check(spec, tables)
    invariants.enforce(results)
    return results
