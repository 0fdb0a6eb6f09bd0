"""Parse the ``activity`` group (raw histories and the features computed from them) and
the ``features`` group (the model-ready ``partners_engineered`` table)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Problems, did_you_mean
from .checks import FORMATS, _compile, _int, _is_number
from .columns import _column
from .model import ActivitySpec, ColumnSpec, Domain, EngineeredSpec, FeatureSpec, HistorySpec


def _input(p: Problems, name: str, decl: Any, path: str, domains: dict[str, Domain]) -> ColumnSpec | None:
    """A per-partner input: a distribution (mapping), or an expression / column name / number."""
    if isinstance(decl, Mapping):
        return _column(p, name, decl, path, domains)
    if isinstance(decl, str) or _is_number(decl):
        return _column(p, name, {"expr": str(decl)}, path, domains)
    p.add(path, f"must be a distribution (mapping with dist), a partners column or a number, got {decl!r}")
    return None


def _option(p: Problems, path: str, kind: str, value: Any, minimum: Any) -> Any:
    if kind == "int":
        return _int(p, path, value, minimum)
    if kind == "number":
        if not _is_number(value) or value < minimum:
            p.add(path, f"must be a number >= {minimum}, got {value!r}")
            return None
        return float(value)
    if kind == "name":
        if not isinstance(value, str) or not value.isidentifier():
            p.add(path, f"must be a column name, got {value!r}")
            return None
        return value
    if kind == "exprs":
        if not isinstance(value, Mapping) or not value:
            p.add(path, f"must be a non-empty mapping of label -> expression, got {value!r}")
            return None
        out = {str(k): _compile(p, f"{path}.{k}", str(v)) for k, v in value.items()}
        return out if all(out.values()) else None
    if kind == "texts":
        if not isinstance(value, Mapping) or not value or not all(
                isinstance(v, list) and v and all(isinstance(t, str) and t for t in v) for v in value.values()):
            p.add(path, f"must map each label to a non-empty list of texts, got {value!r}")
            return None
        texts = [t for v in value.values() for t in v]
        if len(set(texts)) != len(texts):
            p.add(path, "texts must be distinct (each is scored once)")
            return None
        return {str(k): tuple(v) for k, v in value.items()}
    raise AssertionError(kind)


def _history(p: Problems, name: str, c: Any, path: str, domains: dict[str, Domain]) -> HistorySpec | None:
    from ..histories import KINDS
    if not isinstance(c, Mapping):
        p.add(path, f"must be a mapping with kind, table and the kind's inputs, got {c!r}")
        return None
    kind = KINDS.get(c.get("kind"))
    if kind is None:
        p.add(f"{path}.kind", f"unknown history kind {c.get('kind')!r}" + did_you_mean(str(c.get("kind")), KINDS))
        return None
    table = c.get("table")
    if not isinstance(table, str) or not table.isidentifier():
        p.add(f"{path}.table", f"must be a table name, got {table!r}")
    known_keys = {"kind", "table", *kind.inputs, *kind.options}
    for key in sorted(set(c) - known_keys):
        p.add(f"{path}.{key}", f"unknown key for a '{kind.name}' history" + did_you_mean(key, known_keys)
              + f" (inputs: {', '.join(kind.inputs)}; options: {', '.join(kind.options)})")
    inputs: dict[str, ColumnSpec] = {}
    for key in kind.inputs:
        if key not in c:
            p.add(f"{path}.{key}", f"missing: a '{kind.name}' history needs {key} ({kind.inputs[key]})")
            continue
        col = _input(p, key, c[key], f"{path}.{key}", domains)
        if col is not None:
            inputs[key] = col
    options: dict[str, Any] = {}
    for key, (typ, default, minimum) in kind.options.items():
        if key not in c and default is None:
            p.add(f"{path}.{key}", f"missing: a '{kind.name}' history needs {key}")
            continue
        options[key] = _option(p, f"{path}.{key}", typ, c.get(key, default), minimum)
    exprs = [k for k, (t, _, _) in kind.options.items() if t == "exprs"]
    texts = [k for k, (t, _, _) in kind.options.items() if t == "texts"]
    for e, t in zip(exprs, texts):               # each labelled expression has its texts
        if options.get(e) and options.get(t) and list(options[e]) != list(options[t]):
            p.add(f"{path}.{t}", f"must have the same labels as {e}, in order: {list(options[e])}")
    reads = frozenset().union(*(col.reads for col in inputs.values()))
    expr_reads = frozenset().union(*(x.names for e in exprs for x in (options.get(e) or {}).values()))
    if None in options.values() or not isinstance(table, str) or len(inputs) < len(kind.inputs):
        return None
    return HistorySpec(name, path, kind.name, table, inputs, options, reads | (expr_reads - set(inputs)))


def _activity(p: Problems, c: Any, domains: dict[str, Domain], n: int | None) -> ActivitySpec | None:
    """``activity: null`` (no histories: features are drawn columns) or its histories."""
    from ..histories import KINDS
    if not c:
        return None
    hists = c.get("histories")
    if not isinstance(hists, Mapping) or not hists:
        p.add("activity.histories", "must be a non-empty mapping of history name -> declaration")
        return None
    histories = [h for name, decl in hists.items()
                 if (h := _history(p, str(name), decl, f"activity.histories.{name}", domains)) is not None]
    by_name = {h.name: h for h in histories}
    tables = [h.table for h in histories]
    if len(set(tables)) != len(tables):
        p.add("activity.histories", f"two histories write the same table: {tables}")
    features = []
    for fname, decl in (c.get("features") or {}).items():
        path = f"activity.features.{fname}"
        if not isinstance(decl, Mapping) or "from" not in decl or "expr" not in decl:
            p.add(path, f"must be a mapping with 'from' (a history) and 'expr', got {decl!r}")
            continue
        source = decl["from"]
        if source not in hists:
            p.add(f"{path}.from", f"unknown history {source!r}" + did_you_mean(str(source), hists))
            continue
        col = _column(p, str(fname), {k: v for k, v in decl.items() if k != "from"}, path, domains)
        if col is None or source not in by_name:
            continue
        aggs = KINDS[by_name[source].kind].aggregates
        for name in sorted(col.reads - set(aggs) - set(domains)):
            p.add(f"{path}.expr", f"unknown name {name!r}: neither an aggregate of history {source!r} "
                  f"({', '.join(aggs)}) nor a partners column" + did_you_mean(name, [*aggs, *domains]))
        features.append(FeatureSpec(str(fname), path, source, col, frozenset(col.reads & set(aggs))))
    if not features:
        p.add("activity.features", "must declare at least one feature computed from a history")
    formats = c.get("formats") or []
    if not formats or any(f not in FORMATS for f in formats):
        p.add("activity.formats", f"must be a non-empty list of {', '.join(FORMATS)}, got {formats!r}")
    write, limit = c.get("write", "auto"), _int(p, "activity.auto_write_max", c.get("auto_write_max", 250_000), 0)
    if write == "auto":                       # keep the history rows for writing up to `limit` partners
        write_now = n is not None and limit is not None and n <= limit
    elif isinstance(write, bool):
        write_now = write
    else:
        p.add("activity.write", f"must be true, false or auto, got {write!r}")
        write_now = False
    return ActivitySpec(tuple(histories), tuple(features), tuple(formats), write_now, write == "auto", limit or 0)


def _engineered(p: Problems, c: Any, known: Mapping[str, Domain]) -> EngineeredSpec | None:
    if not isinstance(c, Mapping):
        p.add("features", f"must declare table, columns and carry, got {c!r}")
        return None
    out = []
    for key in ("columns", "carry"):
        names = c.get(key)
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            p.add(f"features.{key}", f"must be a list of partners columns, got {names!r}")
            out.append(())
            continue
        for name in names:
            if name not in known:
                p.add(f"features.{key}", f"unknown column {name!r}" + did_you_mean(name, known))
        out.append(tuple(names))
    table = c.get("table", "partners_engineered")
    return EngineeredSpec(str(table), *out)
