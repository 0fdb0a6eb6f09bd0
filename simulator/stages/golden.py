"""Golden records: pinned rows that replace generated ones and are made true by the data.

Before the world is generated, each record gets ``golden.candidates`` draws of every column
that does not depend on a stage (churn, network, scenarios), from its own named streams
and the declared distributions, with pinned sampled values set. The first candidate whose
derived values (tier, proximity, ..., and the scenario the rules would give) agree with
every pin is chosen; none agreeing means the record contradicts the rules, and the config
is refused. The chosen values then replace the generated row's values column by column.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

import re
from typing import Any

from ..errors import ConfigError, Problems, did_you_mean
from ..plan import Step
from ..spec.checks import _is_number, _key, named_entries
from ..spec.model import ColumnSpec, Domain, GoldenRecord, IdSpec
from ..stage import WorldSpec
from ..streams import stream
from . import columns

SETTABLE = ("sample", "categorical")          # kinds whose pins are set, not checked


@dataclass(frozen=True)
class Golden:
    rows: np.ndarray                           # row positions of the records, in record order
    values: Mapping[str, object]               # pre-stage column -> chosen values per record
    pins: Mapping[str, tuple[np.ndarray, list]]  # column -> (record positions, pinned values)

    def apply(self, name: str, values: object) -> object:
        """Put the golden rows' values of ``name`` into a freshly produced column."""
        if name in self.values:
            return _assign(values, self.rows, self.values[name])
        if name in self.pins:
            which, pinned = self.pins[name]
            return _assign(values, self.rows[which], pinned)
        return values


def _assign(values: object, rows: np.ndarray, new: object) -> object:
    if len(rows) == 0:
        return values
    if isinstance(values, pd.Categorical):
        out = values.copy()
        out[rows] = new if np.ndim(new) == 0 else list(new)
        return out
    out = np.array(values, copy=True)
    out[rows] = new
    return out


def equal(values: object, pin: object) -> np.ndarray:
    """Row-wise agreement with a pinned value (floats to 1e-9)."""
    if isinstance(values, pd.Categorical):
        return np.asarray(values == pin)
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not isinstance(pin, bool):
        return np.isclose(arr, float(pin), rtol=0, atol=1e-9)
    return arr == pin


def pre_stage(plan: list[Step]) -> list[Step]:
    """Column steps that read nothing a stage writes, directly or through other columns."""
    late: set[str] = set()
    out = []
    for step in plan:
        if step.stage.entity is None or not isinstance(step.payload, ColumnSpec) or step.reads & late:
            late |= step.writes | {step.name}
        else:
            out.append(step)
    return out


def prepare(spec: WorldSpec, plan: list[Step]) -> Golden:
    """Choose each record's pre-stage values; refuse records the rules cannot realize."""
    records = spec.golden
    g, k = len(records), spec.golden_candidates
    rows = np.array([r.row for r in records], dtype=np.int64)
    pins: dict[str, tuple[np.ndarray, list]] = {}
    for i, rec in enumerate(records):
        for col, value in rec.pins.items():
            which, vals = pins.setdefault(col, (np.array([], dtype=np.int64), []))
            pins[col] = (np.append(which, i), [*vals, value])
    if g == 0:
        return Golden(rows, {}, pins)

    m = g * k
    record_of = np.repeat(np.arange(g), k)
    env: dict[str, object] = {}
    ok = np.ones(m, dtype=bool)
    first_failure: dict[int, str] = {}
    for step in pre_stage(plan):
        col = step.payload
        values = columns.produce(col, env, m, stream(spec.seed, "golden", col.name), spec.as_of)
        if col.name in pins:
            which, pinned = pins[col.name]
            for i, value in zip(which, pinned):
                sel = record_of == i
                if col.kind in SETTABLE:
                    values = _assign(values, np.flatnonzero(sel), value)
                else:
                    agree = equal(values, value) | ~sel
                    if not agree.all() and i not in first_failure and not agree[sel].any():
                        first_failure[i] = _describe(col.name, value, values, sel)
                    ok &= agree
        env[col.name] = values

    _stage_filters(spec, env, pins, record_of, m, ok, first_failure)
    ok2 = ok.reshape(g, k)
    problems = []
    for i, rec in enumerate(records):
        if not ok2[i].any():
            why = first_failure.get(i, "no draw agrees with all its pins at once")
            problems.append(f"{rec.path} ({rec.partner_id}): contradicts the declared rules: {why}")
    if problems:
        raise ConfigError(problems)
    chosen = np.arange(g) * k + ok2.argmax(axis=1)
    values = {s.name: _take(env[s.name], chosen) for s in pre_stage(plan)}
    return Golden(rows, values, pins)


def _take(values: object, idx: np.ndarray) -> object:
    if isinstance(values, pd.Categorical):
        return np.asarray(values[idx], dtype=object)
    return np.asarray(values)[idx]


def _describe(name: str, pin: object, values: object, sel: np.ndarray) -> str:
    seen = pd.Series(np.asarray(values, dtype=object)[sel]).value_counts().index[:3].tolist()
    return f"{name} is pinned to {pin!r}, but the rules derive {seen} from its other values"


def _stage_filters(spec: WorldSpec, env: dict, pins: Mapping, record_of: np.ndarray, m: int,
                   ok: np.ndarray, first_failure: dict[int, str]) -> None:
    """Let each stage's golden hook prefer the draws whose pinned outcome follows from their
    pins: the columns stages write are filled with each record's pins (null elsewhere)."""
    stage_env = dict(env)
    for stage in spec.stages:
        for col, dom in stage.writes().items():
            if col in stage_env:
                continue
            fill = np.zeros(m, dtype=bool) if dom.dtype == "bool" else np.full(m, np.nan)
            if col in pins and dom.dtype in ("bool", "float", "int"):
                for i, value in zip(*pins[col]):
                    fill[record_of == i] = value
            stage_env[col] = fill
    for stage in spec.stages:
        # over the draws that agree with every pin so far, so that a failure says why the
        # last of them fail (a scenario the other pins cannot lead to), not why any draw does
        alive = np.flatnonzero(ok)
        sub = {k: v[alive] for k, v in stage_env.items()}
        found = stage.golden_filter(sub, pins, record_of[alive], alive.size)
        if found is None:
            continue
        agree, failures = found
        for i, why in failures.items():
            first_failure.setdefault(i, why)
        keep = np.zeros(m, dtype=bool)
        keep[alive] = agree
        ok &= keep


def parse(p: Problems, c: Mapping, n: int | None, id_spec: IdSpec,
          domains: Mapping[str, Domain]) -> list[GoldenRecord]:
    """``golden.records``: partner id -> pinned values (a record set to null is left out)."""
    out = []
    pattern = re.compile(re.escape(id_spec.prefix) + r"(\d+)")
    records = c.get("records") or {}
    if not isinstance(records, Mapping):
        p.add("golden.records", f"must map each partner id to its pinned values, got {records!r}")
        return out
    for pid, path, rec in named_entries(p, "golden.records", records, "column -> pinned value"):
        m = pattern.fullmatch(pid)
        if not m or int(m.group(1)) < 1:
            p.add(path, f"{pid!r} is not an id this world generates ({id_spec.prefix} followed by a number from 1)")
            continue
        row = int(m.group(1)) - 1
        if n is not None and row >= n:
            p.add(path, f"{pid} needs n_partners >= {row + 1}, got {n}")
        pins = {}
        for col, value in rec.items():
            dom = domains.get(col)
            cpath = f"{path}.{col}"
            if dom is None or col == id_spec.column:
                p.add(cpath, "unknown column" + did_you_mean(str(col), domains))
            elif not _fits(dom, value):
                allowed = (f"one of {', '.join(map(str, dom.categories))}" if dom.dtype == "category"
                           else f"a {dom.dtype} value")
                p.add(cpath, f"{value!r} is not valid here; must be {allowed}")
            else:
                pins[str(col)] = value
        out.append(GoldenRecord(pid, path, row, pins))
    return out


def _fits(dom: Domain, value: Any) -> bool:
    if dom.dtype == "category":
        return _key(value) in dom.categories
    if dom.dtype == "bool":
        return isinstance(value, bool)
    if dom.dtype == "int":
        return _is_number(value) and float(value).is_integer()
    if dom.dtype in ("float", "any"):
        return _is_number(value) or (dom.dtype == "any" and isinstance(value, (bool, str)))
    return False   # datetime and helpers are not pinnable
