"""The building blocks of the table schemas, shared by the stages and ``schemas.py``.

A stage gives the schemas of the tables it writes (``Stage.schemas``) and the checks of
its partners columns; ``schemas.py`` assembles and runs them. What both need lives here,
so that no stage imports ``schemas`` (the engine's validation): a column from its domain,
the partners table's schema (a projection of it is the model-ready table's), and
foreign-key checks hashed by Arrow. (``spec/checks.py`` checks the config, not tables.)
pandera is imported when a schema is first built, after ``schemas.py``'s guard against
its slow geopandas probe.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .spec import Domain
from .stage import WorldSpec

if TYPE_CHECKING:
    import pandera.pandas as pa

DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "datetime": "datetime64[us]",
          "str": "str", "any": None}


def _column(domain: Domain, checks: list["pa.Check"]) -> "pa.Column":
    import pandera.pandas as pa

    if domain.dtype == "category":
        return pa.Column("category", checks=[pa.Check.isin(list(domain.categories)), *checks])
    dtype = "Int64" if domain.dtype == "int" and domain.nullable else DTYPES[domain.dtype]
    return pa.Column(dtype, checks=checks, nullable=domain.nullable)


def row_checks(spec: WorldSpec) -> list[tuple[frozenset[str], "pa.Check"]]:
    """Every stage's partners-table row checks, with the columns each reads."""
    return [rc for s in spec.stages for rc in s.row_checks()]


_PARTNERS: dict[int, tuple[tuple, "pa.DataFrameSchema"]] = {}


def partners_schema(spec: WorldSpec) -> "pa.DataFrameSchema":
    """The partners table: every stage's columns with their domains and checks. Built once
    per world: every block's spec shares the world's stages, and the schema reads nothing else."""
    cached = _PARTNERS.get(id(spec.stages))
    if cached is not None and cached[0] is spec.stages:
        return cached[1]
    schema = _partners_schema(spec)
    _PARTNERS.clear()                          # one world at a time; the tuple is kept to pin its id
    _PARTNERS[id(spec.stages)] = (spec.stages, schema)
    return schema


def _partners_schema(spec: WorldSpec) -> "pa.DataFrameSchema":
    import pandera.pandas as pa

    domains = spec.domains()
    extra: dict[str, list] = {}
    for s in spec.stages:
        for name, checks in s.column_checks().items():
            extra.setdefault(name, []).extend(checks)
    cols = {name: _column(domains[name], extra.get(name, [])) for name in spec.output_columns}
    cols[spec.key] = pa.Column("str", unique=True)
    return pa.DataFrameSchema(cols, strict=True, ordered=True, name=spec.table,
                              checks=[check for _, check in row_checks(spec)])


def arrow_check(name: str, test) -> "pa.Check":
    """A row check computed by an Arrow kernel on the column as strings (hashing in C++,
    not through Python objects); ``test`` maps the Arrow array to a boolean array."""
    import pandera.pandas as pa
    import pyarrow

    def check(s: pd.Series) -> pd.Series:
        found = test(pyarrow.array(s, type=pyarrow.string()))
        return pd.Series(found.to_numpy(zero_copy_only=False), index=s.index)

    return pa.Check(check, name=name)


def member_of(keys: pd.Series, name: str) -> "pa.Check":
    """A foreign-key check: every value is one of ``keys``."""
    import pyarrow
    import pyarrow.compute as pc

    allowed = pyarrow.array(keys, type=pyarrow.string())
    return arrow_check(name, lambda values: pc.is_in(values, value_set=allowed))
