"""pandera schemas for the output tables, checked before any file is published.

Structure (columns, dtypes, keys) is fixed here; allowed values come from the spec
(categories of labels, clip bounds, the scenario rules, the network's bounds), so a new
region, tier or scenario declared in YAML needs no schema edit.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from .histories import KINDS
from .spec import Domain, WorldSpec

DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "datetime": "datetime64[us]",
          "str": "str", "any": None}


class ValidationError(Exception):
    """A generated table broke its schema; the message names table, column, check, rows."""


def _column(domain: Domain, checks: list[pa.Check]) -> pa.Column:
    if domain.dtype == "category":
        return pa.Column("category", checks=[pa.Check.isin(list(domain.categories)), *checks])
    dtype = "Int64" if domain.dtype == "int" and domain.nullable else DTYPES[domain.dtype]
    return pa.Column(dtype, checks=checks, nullable=domain.nullable)


def partners_schema(spec: WorldSpec) -> pa.DataFrameSchema:
    """The partners table: every declared and stage column, with its domain's checks."""
    domains = spec.domains()
    by_name = {c.name: c for c in spec.columns}
    by_name.update({f.name: f.column for f in spec.history_features})
    ch, net, sc = spec.churn, spec.network, spec.scenarios
    cols = {}
    for name in spec.output_columns:
        checks = []
        c = by_name.get(name)
        if c is not None and c.clip != (None, None):
            lo, hi = c.clip
            checks.append(pa.Check.in_range(-np.inf if lo is None else lo, np.inf if hi is None else hi))
        if c is not None and c.sampler == "beta":
            checks.append(pa.Check.in_range(0, 1))
        if name == net.health:
            checks.append(pa.Check.in_range(0, 100))
        if name == net.recent_churn:
            checks.append(pa.Check.ge(0))
        cols[name] = _column(domains[name], checks)
    cols[spec.id.column] = pa.Column("str", unique=True)
    masters = net.masters

    return pa.DataFrameSchema(cols, strict=True, ordered=True, name="partners", checks=[
        pa.Check(lambda df: df[ch.label] == (df[sc.column] != sc.default),
                 name=f"{ch.label} <=> {sc.column} != {sc.default}"),
        pa.Check(lambda df: df[ch.label] == df[ch.date_column].notna(),
                 name=f"{ch.date_column} set exactly for churners"),
        pa.Check(lambda df: df[net.health].notna() == df[masters],
                 name=f"{net.health} set exactly for masters"),
        pa.Check(lambda df: df[net.recent_churn].notna() == df[masters],
                 name=f"{net.recent_churn} set exactly for masters"),
    ])


def engineered_schema(spec: WorldSpec) -> pa.DataFrameSchema:
    """partners_engineered: the partners table's own columns (same checks), network
    features null exactly for non-masters, the other features never null."""
    eng, net = spec.engineered, spec.network
    partners = partners_schema(spec)
    names = [spec.id.column, *eng.features, *eng.carry]
    checks = [pa.Check(lambda df, c=c: df[c].notna() == df[net.masters], name=f"{c} set exactly for masters")
              for c in (net.health, net.recent_churn) if c in names and net.masters in names]
    return pa.DataFrameSchema({c: partners.columns[c] for c in names}, strict=True, ordered=True,
                              name=eng.table, checks=checks)


def _arrow_check(name: str, test) -> pa.Check:
    """A row check computed by an Arrow kernel on the column as strings (hashing in C++,
    not through Python objects); ``test`` maps the Arrow array to a boolean array."""

    def check(s: pd.Series) -> pd.Series:
        found = test(pyarrow.array(s, type=pyarrow.string()))
        return pd.Series(found.to_numpy(zero_copy_only=False), index=s.index)

    return pa.Check(check, name=name)


def _member_of(keys: pd.Series, name: str) -> pa.Check:
    """A foreign-key check: every value is one of ``keys``."""
    allowed = pyarrow.array(keys, type=pyarrow.string())
    return _arrow_check(name, lambda values: pc.is_in(values, value_set=allowed))


def network_schema(spec: WorldSpec, partners: pd.DataFrame) -> pa.DataFrameSchema:
    """network_relationships: a tree from masters to non-master subs, dated before as_of."""
    net = spec.network
    ids = partners[spec.id.column]
    is_master = partners[net.masters].to_numpy()
    masters, others = ids[is_master], ids[~is_master]
    lo = spec.as_of - np.timedelta64(net.recruited_days[1], "D")
    # a partner who joined within the window is recruited when it joined (not_before)
    hi = spec.as_of - np.timedelta64(0 if net.not_before else net.recruited_days[0], "D")
    return pa.DataFrameSchema({
        "relationship_id": pa.Column("str", unique=True),
        "master_affiliate_id": pa.Column("str", checks=_member_of(masters, "is a master partner")),
        "sub_affiliate_id": pa.Column("str", unique=True,   # a tree: one master per sub
                                      checks=_member_of(others, "is a non-master partner")),
        "recruited_at": pa.Column("datetime64[us]", checks=pa.Check.in_range(lo, hi)),
        "is_active": pa.Column("bool"),
    }, strict=True, ordered=True, name=net.table, checks=[
        pa.Check(lambda df: df.groupby("master_affiliate_id", observed=True).size() <= net.fanout[1],
                 name=f"at most {net.fanout[1]} subs per master"),
    ])


def interventions_schema(spec: WorldSpec, partners: pd.DataFrame) -> pa.DataFrameSchema:
    """interventions: known partners and types, outcomes, effect bounds, ordered dates."""
    iv = spec.interventions
    lo = spec.as_of - np.timedelta64(iv.days_before[1], "D")
    hi = spec.as_of - np.timedelta64(iv.days_before[0], "D")
    after = np.timedelta64(iv.outcome_after_days, "D")
    return pa.DataFrameSchema({
        "intervention_id": pa.Column("str", unique=True),
        "partner_id": pa.Column("str", checks=_member_of(partners[spec.id.column], "is a partner")),
        "intervention_type": pa.Column("category", checks=pa.Check.isin(list(iv.types))),
        "outcome": pa.Column("category", checks=pa.Check.isin([iv.retained, iv.churned])),
        "uplift_signal": pa.Column("float64", checks=pa.Check.in_range(*iv.clip)),
        "intervention_date": pa.Column("datetime64[us]", checks=pa.Check.in_range(lo, hi)),
        "outcome_recorded_at": pa.Column("datetime64[us]"),
    }, strict=True, ordered=True, name=iv.table, checks=[
        pa.Check(lambda df: df["outcome_recorded_at"] - df["intervention_date"] == after,
                 name=f"outcome recorded {iv.outcome_after_days} days after the intervention"),
    ])


def uplift_truth_schema(spec: WorldSpec, partners: pd.DataFrame) -> pa.DataFrameSchema:
    """uplift_truth: one row per partner, base probability and each type's declared effect."""
    iv = spec.interventions
    ids = pyarrow.array(partners[spec.id.column], type=pyarrow.string())

    def same_partner(values: pyarrow.Array) -> pyarrow.Array:   # implies the FK and uniqueness
        if len(values) != len(ids):
            return pyarrow.array([False] * len(values))
        return pc.equal(values, ids)

    cols = {
        "partner_id": pa.Column("str", checks=_arrow_check("row i is partners row i", same_partner)),
        "base_churn_probability": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
    }
    for kind in iv.types:
        declared = [r.effect for r in iv.effects[kind]] + ([] if iv.effects[kind][-1].expr is None else [0.0])
        cols[iv.truth_column(kind)] = pa.Column("float64", checks=pa.Check.isin(declared))
    return pa.DataFrameSchema(cols, strict=True, ordered=True, name=iv.truth_table)


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


def validate_tables(spec: WorldSpec, tables: dict[str, pd.DataFrame]) -> None:
    """Check every generated table against its schema (the child tables in parallel)."""
    partners = tables["partners"]
    validate("partners", partners, partners_schema(spec))
    jobs = [(spec.network.table, network_schema)]
    if spec.engineered is not None:
        jobs.append((spec.engineered.table, lambda spec, partners: engineered_schema(spec)))
    for h in spec.activity.histories if spec.history_tables else ():
        jobs.append((h.table, lambda spec, partners, h=h: KINDS[h.kind].schema(h, spec)))
    if spec.interventions is not None:
        jobs += [(spec.interventions.table, interventions_schema),
                 (spec.interventions.truth_table, uplift_truth_schema)]
    # Arrow's hashing kernels release the GIL, so two threads use both cores
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(validate, name, tables[name], make(spec, partners)) for name, make in jobs]
        for future in futures:
            future.result()
