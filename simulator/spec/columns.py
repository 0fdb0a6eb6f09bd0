"""Parse population columns: samplers, categoricals, derived, bins, lookups, dates."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..distributions import CATEGORICAL, CONSTRAINTS, KNOWN, SAMPLERS
from ..errors import Problems, did_you_mean
from .checks import _check_weights, _compile, _is_number, _key, _mapping
from .model import ColumnSpec, Domain

FALLBACK_KEY = "*"           # per-category table entry for values not listed
COLUMN_KINDS = ("dist", "expr", "bins", "lookup", "days_before")
MODIFIERS = ("by", "clip", "cap", "round", "dtype", "keep", "persistence", "ages", "arrivals")
ARRIVALS = ("steady",)      # how partners arrive through a horizon (an age column drawn with dist: exponential)


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
        if kind == "expr":                    # derived numbers are floats unless `dtype` says otherwise
            common = {**common, "cast": common["cast"] or "float"}
        dom = Domain("datetime") if kind == "days_before" else Domain(common["cast"])
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
    for bound, label in ((lo, "clip.min"), (hi, "clip.max")):
        if bound is not None and not _is_number(bound):
            p.add(f"{path}.{label}", f"must be a number, got {bound!r}")
    if "cap" in decl:                          # the largest value a heavy tail may take
        cap = decl["cap"]
        if not _is_number(cap) or not cap > 0:
            p.add(f"{path}.cap", f"must be a number > 0 (the largest value the column may take), got {cap!r}")
        elif _is_number(hi) or hi is None:
            hi = cap if hi is None else min(hi, cap)
    if _is_number(lo) and _is_number(hi) and lo > hi:
        p.add(f"{path}.clip", f"min {lo} is above max {hi}")
    rnd = decl.get("round")
    if rnd is not None and rnd != "floor" and (isinstance(rnd, bool) or not isinstance(rnd, int)):
        p.add(f"{path}.round", f"must be a number of decimals or 'floor', got {rnd!r}")
    cast = decl.get("dtype")
    if cast is not None and cast not in ("int", "float", "bool"):
        p.add(f"{path}.dtype", f"must be one of int, float, bool, got {cast!r}")
        cast = None
    persistence = decl.get("persistence", 1.0)
    if "persistence" in decl and "dist" not in decl:
        p.add(f"{path}.persistence", "only a drawn column (dist) moves on its own; a derived column moves "
              "with the columns it reads")
        persistence = 1.0
    elif isinstance(persistence, bool) or not _is_number(persistence) or not 0 <= persistence <= 1:
        p.add(f"{path}.persistence", f"must be a correlation in [0, 1] of the partner's draw from one period "
              f"to the next (1: it never moves), got {persistence!r}")
        persistence = 1.0
    ages = decl.get("ages", False)
    if not isinstance(ages, bool):
        p.add(f"{path}.ages", f"must be true (a count of days, that many fewer at an earlier date) or false, "
              f"got {ages!r}")
        ages = False
    arrivals, dist = decl.get("arrivals"), decl.get("dist")
    if arrivals is not None and arrivals not in ARRIVALS:
        p.add(f"{path}.arrivals", f"must be one of {', '.join(ARRIVALS)}, got {arrivals!r}"
              + did_you_mean(str(arrivals), ARRIVALS))
        arrivals = None
    elif arrivals is not None and dist != "exponential" and (dist is None or dist in KNOWN):  # (unknown: at .dist)
        p.add(f"{path}.arrivals", f"needs an age drawn with dist: exponential (a steady population's ages, "
              f"scale its mean stay in days), got {'dist: ' + str(dist) if dist else 'a column without dist'}")
        arrivals = None
    return {"clip": (lo, hi), "round": rnd, "cast": cast, "keep": bool(decl.get("keep", True)),
            "persistence": float(persistence), "ages": ages, "arrivals": arrivals}


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
        if dom.dtype == "any":                # `by` column failed validation: reported there
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
    # entries for values this world's `by` column never takes are allowed (a region mix
    # may leave regions out); values it takes need an entry or the '*' fallback
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


def _columns(p: Problems, decls: Any, reserved: dict[str, Domain],
             path: str = "population.columns") -> tuple[list[ColumnSpec], dict[str, Domain]]:
    """Every column of ``decls`` (name -> declaration), and the domains of every name known
    afterwards (``reserved`` plus these; a column that failed validation as 'any', so that
    its problem is reported once, not again by every reader). A column set to null is left
    out (how a YAML file removes what another declared)."""
    if isinstance(decls, Mapping):
        decls = {name: decl for name, decl in decls.items() if decl is not None}
    if not isinstance(decls, Mapping) or not decls:
        p.add(path, "must be a non-empty mapping of column name -> declaration")
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
            p.add(f"{path}.{name}", "is written by a stage; choose another name")
            continue
        col = _column(p, str(name), decl, f"{path}.{name}", domains)
        if col is not None:
            domains[col.name] = col.domain     # a later column's `by:` may read it
            out.append(col)
        else:                                  # reported once; don't cascade into its readers
            domains.setdefault(str(name), Domain("any"))
    return out, domains


