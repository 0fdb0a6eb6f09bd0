"""Small validators shared by the spec parsers; each adds problems with config paths."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import Problems
from ..expr import Expr, ExprError, compile_expr

WEIGHT_TOLERANCE = 1e-4
FORMATS = ("csv", "parquet")                  # file formats a table can be written in


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


def section(p: Problems, path: str, value: Any, what: str) -> dict:
    """A config section that may be left out (None: {}), or a problem naming what it must
    hold when it is a scalar or a list (``timeline=12`` on the command line)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        p.add(path, f"must be a mapping of {what}, got {value!r}")
        return {}
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


def named_entries(p: Problems, path: str, value: Any, what: str) -> list[tuple[str, str, Mapping]]:
    """(name, config path, entry) of a mapping of user-named entries; an entry set to null
    is left out (how a YAML file removes what another declared), a non-mapping refused."""
    out = []
    for name, entry in value.items():
        epath = f"{path}.{name}"
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            p.add(epath, f"must be a mapping of {what}, got {entry!r}")
            continue
        out.append((str(name), epath, entry))
    return out


def _compile(p: Problems, path: str, source: Any) -> Expr | None:
    try:
        return compile_expr(source)
    except ExprError as exc:
        p.add(path, str(exc))
        return None


def _date(p: Problems, path: str, value: Any) -> np.datetime64 | None:
    """A calendar date written YYYY-MM-DD (a YAML date too), as a day; a number such as
    20260101, a time of day or an impossible date is refused with ``path``."""
    text = value.isoformat() if hasattr(value, "isoformat") and not isinstance(value, str) else value
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        p.add(path, f"must be a date written YYYY-MM-DD, like 2026-01-01 (no time of day), got {value!r}")
        return None
    try:
        return np.datetime64(text.strip(), "D")
    except ValueError:
        p.add(path, f"must be a real calendar date written YYYY-MM-DD, got {value!r}")
        return None


def _int(p: Problems, path: str, value: Any, minimum: int) -> int | None:
    if isinstance(value, float) and value.is_integer():   # 1e6 on the command line
        value = int(value)
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
