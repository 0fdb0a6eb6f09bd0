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

import numpy as np
import pandas as pd

# pandera looks for geopandas on every dtype it resolves (about 4 ms a failed import, 17
# per block validated); where geopandas is not installed, say so once
if "geopandas" not in sys.modules and importlib.util.find_spec("geopandas") is None:
    sys.modules["geopandas"] = None            # `import geopandas` then fails at once
import pandera.pandas as pa  # noqa: E402
from pandera.errors import SchemaErrors

from . import invariants, threads
from .errors import ValidationError
from .stage import WorldSpec
from .table_checks import member_of, partners_schema, row_checks  # noqa: F401  (the stages' helpers, re-exported)


def table_schemas(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> dict[str, pa.DataFrameSchema]:
    """Every table's schema: the partners table's, then each stage's tables'."""
    out = {spec.table: partners_schema(spec)}
    for s in spec.stages:
        out.update(s.schemas(spec, tables))
    return out


def validate(name: str, frame: pd.DataFrame, schema: pa.DataFrameSchema) -> None:
    """Raise ValidationError naming every failed column and check, with example rows (an
    infinite number first: no table holds one, whatever a column's range)."""
    for column, series in frame.items():
        if series.dtype.kind != "f":
            continue
        if (bad := np.flatnonzero(np.isinf(series.to_numpy(dtype=float, na_value=np.nan)))).size:
            raise ValidationError(f"table '{name}' failed validation: column {column}, check finite: "
                                  f"{bad.size:,} infinite values, e.g. rows {bad[:5].tolist()}")
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
