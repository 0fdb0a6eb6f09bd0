"""Warehouse faults: what the tables a pipeline reads get wrong, the truth kept clean.

Declared under the top-level ``faults:`` mapping (the config group ``conf/faults/``;
``faults=none``: clean tables). Each kind of fault is taken by the stage whose tables it
spoils, which claims it while it is parsed (:meth:`simulator.stage.ParseContext.missing_values`);
a fault no stage takes is refused with its path. Built so far:

- ``missing``: feature -> ``{share, where}``. In the model-ready tables (``partners_engineered``
  and ``features_panel``), each row where ``where`` holds (every row, without one) loses
  the feature's value (null) with probability ``share``, as a warehouse join that failed
  would leave it: missing at random, or not (``where: "region == 'Nigeria'"``). The
  partners table keeps the true value, and every label and truth comes from it. stats.json
  has a target per entry: the share of the eligible rows (where holds, and a value was
  there to lose) that lost it.

Late-arriving rows, duplicated events, tracking outages and reactivations (issue "Realism",
item 3) are not built yet: declaring one is refused, naming what is.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Problems, did_you_mean
from ..expr import Expr
from .checks import _compile, _is_number

KINDS = {"missing": "a feature's values lost in a share of the model-ready rows: feature -> {share, where}"}
PLANNED = ("late", "duplicates", "outages", "reactivations")


@dataclass(frozen=True)
class Missing:
    """A feature whose value a share of the model-ready rows lose (where ``where`` holds)."""

    path: str
    column: str
    share: float
    where: Expr | None = None


@dataclass(frozen=True)
class Faults:
    """The declared faults (empty: clean tables)."""

    missing: tuple[Missing, ...] = ()


def parse(p: Problems, raw: Any) -> Faults:
    """The ``faults:`` mapping (None: no faults)."""
    if raw is None:
        return Faults()
    if not isinstance(raw, Mapping):
        p.add("faults", f"must be a mapping of fault kind -> declarations ({', '.join(KINDS)}), got {raw!r}")
        return Faults()
    for key in raw:
        if key in PLANNED:
            p.add(f"faults.{key}", f"not built yet (issue \"Realism\", item 3): the faults built so far are "
                  f"{', '.join(KINDS)}")
        elif key not in KINDS:
            p.add(f"faults.{key}", f"unknown fault kind (known: {', '.join(KINDS)})" + did_you_mean(str(key), KINDS))
    return Faults(_missing(p, raw.get("missing")))


def _missing(p: Problems, raw: Any) -> tuple[Missing, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        p.add("faults.missing", f"must map a feature to {{share, where}}, got {raw!r}")
        return ()
    out = []
    for column, decl in raw.items():
        path = f"faults.missing.{column}"
        if not isinstance(decl, Mapping):
            p.add(path, f"must be a mapping {{share: a probability, where: a condition (optional)}}, got {decl!r}")
            continue
        for key in sorted(set(decl) - {"share", "where"}):
            p.add(f"{path}.{key}", "unknown key (known: share, where)" + did_you_mean(str(key), ["share", "where"]))
        share = decl.get("share")
        if not _is_number(share) or not 0 <= share <= 1:
            p.add(f"{path}.share", f"must be a probability in [0, 1], got {share!r}")
            continue
        where = _compile(p, f"{path}.where", decl["where"]) if decl.get("where") is not None else None
        if decl.get("where") is not None and where is None:
            continue
        out.append(Missing(path, str(column), float(share), where))
    return tuple(out)
