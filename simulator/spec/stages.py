"""Parse the stages' config: churn model, network, scenarios, golden records."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import Problems, did_you_mean
from .checks import _compile, _int, _is_number, _key, _pair
from .columns import _column
from .checks import _check_weights
from .model import (ChurnSpec, DbSpec, Domain, EffectRow, GoldenRecord, IdSpec, InterventionSpec,
                    NetworkSpec, RuleSpec, ScenarioSpec)


def _rules(p: Problems, path: str, rules: Any, numeric: bool) -> list[RuleSpec]:
    out = []
    items = rules.items() if isinstance(rules, Mapping) else \
        ((r.get("name") if isinstance(r, Mapping) else None, r) for r in (rules or []))
    if not rules:
        p.add(path, "must declare at least one rule")
    for i, (name, rule) in enumerate(items):
        rpath = f"{path}.{name}" if isinstance(rules, Mapping) else f"{path}[{i}]"
        if not isinstance(rule, Mapping) or not name:
            p.add(rpath, f"must be a mapping with a name and 'when', got {rule!r}")
            continue
        source = rule.get("when", rule.get("value")) if numeric else rule.get("when")
        if ("when" in rule) == ("value" in rule) and numeric:
            p.add(rpath, "needs exactly one of 'when' (boolean) or 'value' (numeric)")
            continue
        expr = _compile(p, f"{rpath}.{'when' if 'when' in rule else 'value'}", source)
        weight = rule.get("weight", 0.0)
        if numeric and not _is_number(weight):
            p.add(f"{rpath}.weight", f"must be a number (log-odds), got {weight!r}")
            continue
        if expr is not None:
            out.append(RuleSpec(str(name), rpath, expr, float(weight)))
    return out


def _churn(p: Problems, c: Mapping) -> ChurnSpec | None:
    rate = c.get("target_rate")
    if not _is_number(rate) or not 0 < rate < 1:
        p.add("churn.target_rate", f"must be a rate strictly between 0 and 1, got {rate!r}")
    rules = _rules(p, "churn.rules", c.get("rules"), numeric=True)
    date = c.get("churn_date") or {}
    date_col = _column(p, str(date.get("column", "churned_at")), date.get("days_before"),
                       "churn.churn_date.days_before", {})
    if date_col is not None and date_col.kind != "sample":
        p.add("churn.churn_date.days_before", "must be a sampler (e.g. dist: integers)")
    if not _is_number(rate) or date_col is None:
        return None
    return ChurnSpec(str(c.get("label", "churn_label")), str(c.get("probability", "churn_probability")),
                     float(rate), tuple(rules), str(date.get("column", "churned_at")), date_col,
                     date.get("not_before"))


def _network(p: Problems, c: Mapping) -> NetworkSpec | None:
    fanout = _pair(p, "network.fanout", c.get("fanout"), 0)
    days = _pair(p, "network.recruited_days_before", c.get("recruited_days_before"), 0)
    recent = _int(p, "network.recent_days", c.get("recent_days"), 0)
    feats = c.get("features") or {}
    if None in (fanout, days, recent):
        return None
    return NetworkSpec(str(c.get("table", "network_relationships")), str(c.get("masters")),
                       fanout, days, recent, str(feats.get("health", "subnetwork_avg_health_score")),
                       str(feats.get("recent_churn", "subnetwork_recent_churn_count")), c.get("not_before"))


def _scenarios(p: Problems, c: Mapping) -> ScenarioSpec:
    rules = _rules(p, "scenarios.rules", c.get("rules"), numeric=False)
    names = [r.name for r in rules]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        p.add("scenarios.rules", f"scenario names must be unique, repeated: {sorted(dupes)}")
    return ScenarioSpec(str(c.get("column", "churn_scenario")), str(c.get("default", "Healthy")),
                        str(c.get("fallback", "Passive_Disengagement")), tuple(rules))



def _golden(p: Problems, c: Mapping, n: int | None, id_spec: IdSpec,
            domains: dict[str, Domain]) -> list[GoldenRecord]:
    out, seen = [], set()
    pattern = re.compile(re.escape(id_spec.prefix) + r"(\d+)")
    for i, rec in enumerate(c.get("records") or []):
        path = f"golden.records[{i}]"
        if not isinstance(rec, Mapping) or id_spec.column not in rec:
            p.add(path, f"must be a mapping with '{id_spec.column}'")
            continue
        pid = str(rec[id_spec.column])
        m = pattern.fullmatch(pid)
        if not m or int(m.group(1)) < 1:
            p.add(f"{path}.{id_spec.column}", f"{pid!r} is not an id this world generates "
                  f"({id_spec.prefix} followed by a number from 1)")
            continue
        row = int(m.group(1)) - 1
        if pid in seen:
            p.add(f"{path}.{id_spec.column}", f"{pid} appears twice")
        seen.add(pid)
        if n is not None and row >= n:
            p.add(f"{path}.{id_spec.column}", f"{pid} needs n_partners >= {row + 1}, got {n}")
        pins = {}
        for col, value in rec.items():
            if col == id_spec.column:
                continue
            dom = domains.get(col)
            cpath = f"{path}.{col}"
            if dom is None:
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


# --------------------------------------------------------------------------- entry


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
        extra = sorted(set(row) - {"when", "effect"})
        if extra:
            p.add(f"{rpath}.{extra[0]}", "unknown key (known: when, effect)")
        expr = _compile(p, f"{rpath}.when", row["when"]) if "when" in row else None
        if "when" in row and expr is None:
            continue
        if expr is None and i < len(rows) - 1:
            p.add(rpath, "a row without 'when' matches everything, so it must be the last row")
        out.append(EffectRow(rpath, expr, float(row["effect"])))
    return tuple(out)


def _interventions(p: Problems, c: Mapping | None) -> InterventionSpec | None:
    if not c:
        return None
    before = len(p.items)
    mix = _check_weights(p, "interventions.mix", c.get("mix"))
    effects_cfg = c.get("effects")
    effects: dict[str, tuple[EffectRow, ...]] = {}
    if not isinstance(effects_cfg, Mapping):
        p.add("interventions.effects", "must map each intervention type to its effect rows")
        effects_cfg = {}
    for kind, rows in effects_cfg.items():
        path = f"interventions.effects.{kind}"
        if mix is not None and str(kind) not in mix:
            p.add(path, f"unknown intervention type {kind!r}: not in interventions.mix"
                  + did_you_mean(str(kind), mix))
            continue
        parsed = _effect_rows(p, path, rows)
        if parsed is not None:
            effects[str(kind)] = parsed
    for kind in (mix or {}):
        if kind not in effects_cfg:
            p.add("interventions.effects", f"no effect rows for {kind!r} (declared in interventions.mix)")
    per = _pair(p, "interventions.per_partner", c.get("per_partner"), 0)
    days = _pair(p, "interventions.days_before", c.get("days_before"), 0)
    after = _int(p, "interventions.outcome_after_days", c.get("outcome_after_days"), 0)
    noise = c.get("noise") or {}
    loc, scale = noise.get("loc", 0.0), noise.get("scale")
    if not _is_number(loc) or not _is_number(scale) or scale < 0:
        p.add("interventions.noise", f"needs loc (a number) and scale (a number >= 0), got {noise!r}")
    clip = c.get("clip") or {}
    lo, hi = clip.get("min"), clip.get("max")
    if not (_is_number(lo) and _is_number(hi)):
        p.add("interventions.clip", f"needs numeric min and max, got {clip!r}")
    elif lo >= hi:
        p.add("interventions.clip", f"min {lo} must be below max {hi}")
    outcomes = c.get("outcomes") or {}
    if len(p.items) > before:
        return None
    return InterventionSpec(str(c.get("table", "interventions")), str(c.get("truth_table", "uplift_truth")),
                            per, days, after, (float(loc), float(scale)), (float(lo), float(hi)),
                            str(outcomes.get("churned", "Churned")), str(outcomes.get("retained", "Retained")),
                            tuple(mix), np.array(list(mix.values())), effects)


DB_KINDS = ("sqlite", "postgres", "none")


def _db(p: Problems, c: Mapping | None) -> DbSpec:
    c = c or {"kind": "none"}
    kind = c.get("kind")
    if kind not in DB_KINDS:
        p.add("db.kind", f"unknown database kind {kind!r} (known: {', '.join(DB_KINDS)})")
        return DbSpec("none")
    mode = c.get("mode", "replace")
    if mode not in ("replace", "append"):
        p.add("db.mode", f"must be replace or append, got {mode!r}")
    if kind == "none":
        return DbSpec("none")
    target = c.get("path") if kind == "sqlite" else c.get("url")
    if not isinstance(target, str) or not target:
        p.add(f"db.{'path' if kind == 'sqlite' else 'url'}", f"must be a non-empty string, got {target!r}")
        return DbSpec("none")
    if kind == "postgres" and not target.startswith("postgresql"):
        p.add("db.url", "must be a PostgreSQL URL like postgresql+psycopg2://user:password@host:5432/db")
    return DbSpec(kind, target, mode)
