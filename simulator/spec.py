"""Config -> typed, validated spec. The only module that reads the Hydra config.

``load_spec(cfg)`` converts the composed config once into frozen dataclasses and checks
its meaning (samplers and parameters, weights, expressions and the columns they name,
golden records), collecting every problem with its config path before raising one
:class:`~simulator.errors.ConfigError`. Stages never see a ``DictConfig``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .distributions import CATEGORICAL, CONSTRAINTS, KNOWN, SAMPLERS
from .errors import ConfigError, Problems, did_you_mean
from .expr import Expr, ExprError, compile_expr

WEIGHT_TOLERANCE = 1e-4
FALLBACK_KEY = "*"           # per-category table entry for values not listed
FORMATS = ("csv", "parquet")
COLUMN_KINDS = ("dist", "expr", "bins", "lookup", "days_before")
MODIFIERS = ("by", "clip", "cap", "round", "dtype", "keep")


@dataclass(frozen=True)
class Domain:
    """What values a column holds: its dtype and, for labels, the allowed categories."""

    dtype: str                                # float | int | bool | category | datetime | any
    categories: tuple = ()
    nullable: bool = False


@dataclass(frozen=True)
class ColumnSpec:
    """One declared partners column (or a hidden helper with keep=False)."""

    name: str
    path: str
    kind: str                                 # sample | categorical | derive | bins | lookup | date
    reads: frozenset[str]
    domain: Domain
    keep: bool = True
    sampler: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # scalar, or per-`by` array
    by: str | None = None
    by_keys: tuple = ()                       # categories of `by`, in the order of params' arrays
    weights: np.ndarray | None = None         # categorical: (k,) or (len(by_keys), k)
    expr: Expr | None = None
    source: str | None = None                 # bins / lookup: the column read
    edges: tuple[tuple[str, float], ...] = ()  # bins: (label, lower edge) ascending; lookup: table
    clip: tuple[float | None, float | None] = (None, None)
    round: int | str | None = None            # decimals, or "floor"
    cast: str | None = None                   # int | float | bool


@dataclass(frozen=True)
class RuleSpec:
    name: str
    path: str
    expr: Expr
    weight: float = 0.0


@dataclass(frozen=True)
class ChurnSpec:
    label: str
    probability: str
    target_rate: float
    rules: tuple[RuleSpec, ...]
    date_column: str
    date: ColumnSpec                          # days before as_of, drawn per churner


@dataclass(frozen=True)
class NetworkSpec:
    table: str
    masters: str
    fanout: tuple[int, int]
    recruited_days: tuple[int, int]
    recent_days: int
    health: str
    recent_churn: str


@dataclass(frozen=True)
class ScenarioSpec:
    column: str
    default: str
    fallback: str
    rules: tuple[RuleSpec, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.default, *(r.name for r in self.rules), self.fallback)


@dataclass(frozen=True)
class GoldenRecord:
    partner_id: str
    path: str
    row: int                                  # position of the generated row it replaces
    pins: Mapping[str, Any]


@dataclass(frozen=True)
class IdSpec:
    column: str
    prefix: str
    width: int


@dataclass(frozen=True)
class WorldSpec:
    """Everything a run needs, validated. Built once by :func:`load_spec`."""

    n: int
    seed: int
    as_of: np.datetime64
    id: IdSpec
    columns: tuple[ColumnSpec, ...]
    churn: ChurnSpec
    network: NetworkSpec
    scenarios: ScenarioSpec
    golden: tuple[GoldenRecord, ...]
    golden_candidates: int
    formats: tuple[str, ...]
    output_dir: str | None
    resolved: Mapping[str, Any]               # the resolved config, for hashing and reports

    def domains(self) -> dict[str, Domain]:
        """Every column of the partners table (and helpers) -> its domain."""
        return _domains(self)

    @property
    def output_columns(self) -> list[str]:
        """The partners table's columns in order."""
        stage_cols = [self.churn.label, self.churn.date_column, self.scenarios.column,
                      self.network.health, self.network.recent_churn]
        return [self.id.column, *(c.name for c in self.columns if c.keep), *stage_cols]


def _domains(spec: WorldSpec) -> dict[str, Domain]:
    out = {spec.id.column: Domain("str")}
    out.update({c.name: c.domain for c in spec.columns})
    out.update(_stage_domains(spec.churn, spec.network, spec.scenarios))
    return out


def _stage_domains(churn: ChurnSpec, net: NetworkSpec, scen: ScenarioSpec) -> dict[str, Domain]:
    return {
        churn.label: Domain("bool"),
        churn.probability: Domain("float"),
        churn.date_column: Domain("datetime", nullable=True),
        net.health: Domain("float", nullable=True),
        net.recent_churn: Domain("int", nullable=True),
        scen.column: Domain("category", scen.labels),
    }


# --------------------------------------------------------------------------- helpers

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _key(v: Any) -> Any:
    """Normalize a category key from YAML (bools stay bools, the rest become str)."""
    return v if isinstance(v, bool) else str(v)


def _mapping(p: Problems, path: str, value: Any, what: str) -> dict | None:
    if not isinstance(value, Mapping) or not value:
        p.add(path, f"must be a non-empty mapping of {what}, got {value!r}")
        return None
    return dict(value)


def _check_weights(p: Problems, path: str, weights: Any) -> dict[str, float] | None:
    w = _mapping(p, path, weights, "label -> weight")
    if w is None:
        return None
    bad = {k: v for k, v in w.items() if not _is_number(v) or v < 0}
    if bad:
        k, v = next(iter(bad.items()))
        p.add(f"{path}.{k}", f"a weight must be a number >= 0, got {v!r}")
        return None
    total = float(sum(w.values()))
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        p.add(path, f"weights sum to {total:.6g}, must sum to 1")
        return None
    return {_key(k): float(v) for k, v in w.items()}


def _compile(p: Problems, path: str, source: Any) -> Expr | None:
    try:
        return compile_expr(source)
    except ExprError as exc:
        p.add(path, str(exc))
        return None


def _int(p: Problems, path: str, value: Any, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        else:
            p.add(path, f"must be a whole number >= {minimum}, got {value!r}")
            return None
    if value < minimum:
        p.add(path, f"must be a whole number >= {minimum}, got {value}")
        return None
    return value


# --------------------------------------------------------------------------- columns

def _column(p: Problems, name: str, decl: Any, path: str, domains: dict[str, Domain]) -> ColumnSpec | None:
    if not isinstance(decl, Mapping):
        p.add(path, f"must be a mapping with one of {', '.join(COLUMN_KINDS)}, got {decl!r}")
        return None
    kinds = [k for k in COLUMN_KINDS if k in decl]
    if len(kinds) != 1:
        p.add(path, f"needs exactly one of {', '.join(COLUMN_KINDS)} (got {kinds or 'none'})")
        return None
    kind = kinds[0]
    common = _modifiers(p, decl, path)
    if kind == "dist":
        return _sampled(p, name, decl, path, domains, common)
    extra = sorted(set(decl) - {kind, "edges", "table", *MODIFIERS})
    if extra:
        p.add(f"{path}.{extra[0]}", f"unknown key for a '{kind}' column"
              + did_you_mean(extra[0], [kind, "edges", "table", *MODIFIERS]))
    if kind in ("expr", "days_before"):
        expr = _compile(p, f"{path}.{kind}", decl[kind])
        if expr is None:
            return None
        dom = Domain("datetime") if kind == "days_before" else Domain(common["cast"] or "any")
        return ColumnSpec(name, path, "date" if kind == "days_before" else "derive", expr.names,
                          dom, expr=expr, **common)
    source = decl[kind]
    table = _mapping(p, f"{path}.{'edges' if kind == 'bins' else 'table'}",
                     decl.get("edges" if kind == "bins" else "table"), "label -> number")
    if table is None:
        return None
    if not all(_is_number(v) for v in table.values()):
        p.add(path, f"every value of its table must be a number, got {table}")
        return None
    pairs = tuple((str(k), float(v)) for k, v in table.items())
    if kind == "bins":
        if [v for _, v in pairs] != sorted(v for _, v in pairs):
            p.add(f"{path}.edges", "lower edges must ascend, lowest tier first")
            return None
        return ColumnSpec(name, path, "bins", frozenset([source]),
                          Domain("category", tuple(k for k, _ in pairs)), source=source,
                          edges=pairs, **common)
    return ColumnSpec(name, path, "lookup", frozenset([source]), Domain("float"),
                      source=source, edges=pairs, **common)


def _modifiers(p: Problems, decl: Mapping, path: str) -> dict:
    clip = decl.get("clip") or {}
    lo, hi = clip.get("min"), clip.get("max")
    if "cap" in decl:
        hi = decl["cap"] if hi is None else min(hi, decl["cap"])
    for bound, label in ((lo, "clip.min"), (hi, "clip.max/cap")):
        if bound is not None and not _is_number(bound):
            p.add(f"{path}.{label}", f"must be a number, got {bound!r}")
    if _is_number(lo) and _is_number(hi) and lo > hi:
        p.add(f"{path}.clip", f"min {lo} is above max {hi}")
    rnd = decl.get("round")
    if rnd is not None and rnd != "floor" and (isinstance(rnd, bool) or not isinstance(rnd, int)):
        p.add(f"{path}.round", f"must be a number of decimals or 'floor', got {rnd!r}")
    cast = decl.get("dtype")
    if cast is not None and cast not in ("int", "float", "bool"):
        p.add(f"{path}.dtype", f"must be one of int, float, bool, got {cast!r}")
        cast = None
    return {"clip": (lo, hi), "round": rnd, "cast": cast, "keep": bool(decl.get("keep", True))}


def _sampled(p: Problems, name: str, decl: Mapping, path: str, domains: dict[str, Domain],
             common: dict) -> ColumnSpec | None:
    dist = decl["dist"]
    if dist not in KNOWN:
        p.add(f"{path}.dist", f"unknown sampler {dist!r}" + did_you_mean(str(dist), KNOWN))
        return None
    by = decl.get("by")
    by_keys: tuple = ()
    if by is not None:
        dom = domains.get(by)
        if dom is None:
            p.add(f"{path}.by", f"unknown column {by!r}" + did_you_mean(str(by), domains))
            return None
        if dom.dtype not in ("category", "bool"):
            p.add(f"{path}.by", f"{by!r} holds {dom.dtype} values; 'by' needs labels or booleans")
            return None
        by_keys = dom.categories if dom.dtype == "category" else (True, False)
    reads = frozenset([by] if by else [])
    if dist == CATEGORICAL:
        extra = sorted(set(decl) - {"dist", "weights", *MODIFIERS})
        if extra:
            p.add(f"{path}.{extra[0]}", "unknown parameter for 'categorical' (known: weights)")
        return _categorical(p, name, decl.get("weights"), path, by, by_keys, reads, common)
    sampler = SAMPLERS[dist]
    extra = sorted(set(decl) - {"dist", *sampler.params, *MODIFIERS})
    if extra:
        p.add(f"{path}.{extra[0]}", f"unknown parameter for '{dist}'"
              + did_you_mean(str(extra[0]), sampler.params))
    params: dict[str, Any] = {}
    for pname, constraint in sampler.params.items():
        ppath = f"{path}.{pname}"
        if pname not in decl:
            p.add(ppath, f"missing: '{dist}' needs {', '.join(sampler.params)}")
            continue
        value = decl[pname]
        if by is not None and isinstance(value, Mapping):
            table = _per_category(p, ppath, value, by, by_keys)
            if table is None:
                continue
            items = table
        else:
            items = [value]
        test, describe = CONSTRAINTS[constraint]
        bad = [v for v in items if not _is_number(v) or not test(v)]
        if bad:
            p.add(ppath, f"must be {describe}, got {bad[0]!r}")
            continue
        params[pname] = np.asarray(items, dtype=float) if len(items) > 1 or isinstance(value, Mapping) \
            else float(items[0])
    if sampler.ordered and all(k in params for k in sampler.ordered):
        lo, hi = (np.asarray(params[k]) for k in sampler.ordered)
        strict = dist == "uniform"
        if np.any(lo >= hi) if strict else np.any(lo > hi):
            p.add(path, f"'{sampler.ordered[0]}' must be {'<' if strict else '<='} "
                        f"'{sampler.ordered[1]}', got {lo.tolist()} and {hi.tolist()}")
    if len(params) != len(sampler.params):
        return None
    return ColumnSpec(name, path, "sample", reads, Domain(common["cast"] or sampler.kind),
                      sampler=dist, params=params, by=by, by_keys=by_keys, **common)


def _per_category(p: Problems, path: str, table: Mapping, by: str, by_keys: tuple) -> list | None:
    """Reorder a per-category table to `by_keys`, using the '*' entry for missing ones."""
    table = {_key(k): v for k, v in table.items()}
    unknown = [k for k in table if k != FALLBACK_KEY and k not in by_keys]
    if unknown:
        p.add(f"{path}.{unknown[0]}", f"{unknown[0]!r} is not a value of '{by}'"
              + did_you_mean(str(unknown[0]), map(str, by_keys)))
        return None
    missing = [k for k in by_keys if k not in table]
    if missing and FALLBACK_KEY not in table:
        p.add(path, f"no entry for {by}={missing[0]!r} (add it, or a '{FALLBACK_KEY}' entry)")
        return None
    return [table.get(k, table.get(FALLBACK_KEY)) for k in by_keys]


def _categorical(p: Problems, name: str, weights: Any, path: str, by: str | None,
                 by_keys: tuple, reads: frozenset, common: dict) -> ColumnSpec | None:
    wpath = f"{path}.weights"
    if by is None:
        w = _check_weights(p, wpath, weights)
        if w is None:
            return None
        labels = tuple(w)
        matrix = np.array(list(w.values()))
    else:
        table = _mapping(p, wpath, weights, f"{by} value -> weights")
        if table is None:
            return None
        rows = _per_category(p, wpath, table, by, by_keys)
        if rows is None:
            return None
        keyed = {_key(k): v for k, v in table.items()}
        checked = []
        for key in by_keys:
            entry = key if key in keyed else FALLBACK_KEY
            checked.append(_check_weights(p, f"{wpath}.{entry}", keyed[entry]))
        if any(c is None for c in checked):
            return None
        labels = tuple(dict.fromkeys(k for c in checked for k in c))
        matrix = np.array([[c.get(k, 0.0) for k in labels] for c in checked])
    return ColumnSpec(name, path, "categorical", reads, Domain("category", labels),
                      weights=matrix, by=by, by_keys=by_keys, **common)


def _columns(p: Problems, decls: Any, reserved: dict[str, Domain]) -> tuple[list[ColumnSpec], dict[str, Domain]]:
    if not isinstance(decls, Mapping) or not decls:
        p.add("population.columns", "must be a non-empty mapping of column name -> declaration")
        return [], dict(reserved)
    domains = dict(reserved)
    # domains of label columns first, so that `by:` may name a column declared later
    for name, decl in decls.items():
        if isinstance(decl, Mapping) and decl.get("dist") == CATEGORICAL \
                and isinstance(decl.get("weights"), Mapping) and decl.get("by") is None:
            domains[name] = Domain("category", tuple(_key(k) for k in decl["weights"]))
        elif isinstance(decl, Mapping) and "bins" in decl and isinstance(decl.get("edges"), Mapping):
            domains[name] = Domain("category", tuple(str(k) for k in decl["edges"]))
        elif isinstance(decl, Mapping) and decl.get("dist") == "bernoulli":
            domains[name] = Domain("bool")
    out = []
    for name, decl in decls.items():
        if name in reserved:
            p.add(f"population.columns.{name}", "is written by a stage; choose another name")
            continue
        col = _column(p, str(name), decl, f"population.columns.{name}", domains)
        if col is not None:
            if col.kind == "categorical" and col.by is not None:
                domains[col.name] = col.domain
            out.append(col)
        else:                                  # reported once; don't cascade into its readers
            domains.setdefault(str(name), Domain("any"))
    return out, domains


# --------------------------------------------------------------------------- stages

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
                     float(rate), tuple(rules), str(date.get("column", "churned_at")), date_col)


def _pair(p: Problems, path: str, value: Any, minimum: int) -> tuple[int, int] | None:
    if not isinstance(value, Mapping):
        p.add(path, f"must be a mapping with low and high, got {value!r}")
        return None
    lo = _int(p, f"{path}.low", value.get("low"), minimum)
    hi = _int(p, f"{path}.high", value.get("high"), minimum)
    if lo is None or hi is None:
        return None
    if lo > hi:
        p.add(path, f"low {lo} is above high {hi}")
        return None
    return lo, hi


def _network(p: Problems, c: Mapping) -> NetworkSpec | None:
    fanout = _pair(p, "network.fanout", c.get("fanout"), 0)
    days = _pair(p, "network.recruited_days_before", c.get("recruited_days_before"), 0)
    recent = _int(p, "network.recent_days", c.get("recent_days"), 0)
    feats = c.get("features") or {}
    if None in (fanout, days, recent):
        return None
    return NetworkSpec(str(c.get("table", "network_relationships")), str(c.get("masters")),
                       fanout, days, recent, str(feats.get("health", "subnetwork_avg_health_score")),
                       str(feats.get("recent_churn", "subnetwork_recent_churn_count")))


def _scenarios(p: Problems, c: Mapping) -> ScenarioSpec:
    rules = _rules(p, "scenarios.rules", c.get("rules"), numeric=False)
    names = [r.name for r in rules]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        p.add("scenarios.rules", f"scenario names must be unique, repeated: {sorted(dupes)}")
    return ScenarioSpec(str(c.get("column", "churn_scenario")), str(c.get("default", "Healthy")),
                        str(c.get("fallback", "Passive_Disengagement")), tuple(rules))


# --------------------------------------------------------------------------- golden

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

def load_spec(cfg: DictConfig | Mapping) -> WorldSpec:
    """Validate the composed config and return the typed spec, or raise ConfigError."""
    try:
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError([f"{getattr(exc, 'full_key', '') or 'config'}: {exc.msg if hasattr(exc, 'msg') else exc}"]) from None
    raw.pop("hydra", None)
    p = Problems()
    n = _int(p, "n_partners", raw.get("n_partners"), 1)
    seed = _int(p, "seed", raw.get("seed"), 0)
    try:
        as_of = np.datetime64(str(raw.get("as_of")), "us")
        if np.isnat(as_of):
            raise ValueError
    except ValueError:
        p.add("as_of", f"must be a date like 2026-01-01, got {raw.get('as_of')!r}")
        as_of = None
    pop = raw.get("population") or {}
    ids = pop.get("id") or {}
    id_spec = IdSpec(str(ids.get("column", "partner_id")), str(ids.get("prefix", "P")),
                     _int(p, "population.id.width", ids.get("width", 5), 1) or 5)

    churn = _churn(p, raw.get("churn") or {})
    network = _network(p, raw.get("network") or {})
    scenarios = _scenarios(p, raw.get("scenarios") or {})
    reserved = {id_spec.column: Domain("str")}
    if churn and network:
        reserved.update(_stage_domains(churn, network, scenarios))
    columns, declared = _columns(p, pop.get("columns"), reserved)

    known = {**declared, **{c.name: c.domain for c in columns}}
    reads = [(c.path, c.reads) for c in columns]
    reads += [(r.path, r.expr.names) for r in (churn.rules if churn else ())]
    reads += [(r.path, r.expr.names) for r in scenarios.rules]
    for path, names in reads:
        for name in sorted(names - set(known)):
            p.add(path, f"unknown column {name!r}" + did_you_mean(name, known))
    if network is not None and known.get(network.masters, Domain("")).dtype not in ("bool", "any"):
        p.add("network.masters", f"must name a boolean column, got {network.masters!r}")
    golden_cfg = raw.get("golden") or {}
    golden = _golden(p, golden_cfg, n, id_spec, known)
    candidates = _int(p, "golden.candidates", golden_cfg.get("candidates", 512), 1)

    out = raw.get("output") or {}
    formats = out.get("formats") or []
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        p.add("output.formats", f"must be a non-empty list of {', '.join(FORMATS)}, got {formats!r}")
    p.raise_if_any()
    return WorldSpec(n, seed, as_of, id_spec, tuple(columns), churn, network, scenarios,
                     tuple(golden), candidates, tuple(formats), out.get("dir"), raw)
