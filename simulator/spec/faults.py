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

- ``late``: history -> ``{share, days}``. A share of the history's rows arrive late: each
  row is late with probability ``share``, by a geometric number of days of mean ``days``
  (at least 1). The written table gains ``ingested_at`` (the day the row arrived); a
  snapshot's features use only the rows ingested by its date, and the table written at
  as_of holds only the rows ingested by then.
- ``duplicates``: history -> ``{share}``. Each row is written twice with probability
  ``share``: its copy is re-delivered (with late rows declared, a geometric number of days of
  their mean after the original arrived, so only its ``ingested_at`` differs); a pipeline
  summing the table counts it twice once both have arrived.
- ``outages``: name -> ``{history, where, start, end}``. No row of the partners ``where``
  holds for is recorded on the days from ``start`` up to ``end`` (the first day recorded
  again), as a tracking script that was down would leave it.

The history faults are taken by the histories stage, for histories whose kind knows how
its features read a faulty table (``Kind.faulty``); the features of the model-ready tables
are computed from the faulty rows, as a pipeline would, while the partners table keeps the
values computed from the clean ones.

- ``reactivations``: ``{share, days, column}``. Each churner returns with probability
  ``share``, a geometric number of days of mean ``days`` after it left (at least 1), when
  that day is by as_of: the partners column ``column`` holds the day (null otherwise). The
  first churn stays the churn (the label, its date, every truth); a horizon's history tables
  hold the returned partner's rows from that day on, as a warehouse sees it active again.
  Taken by the churn stage, which dates the churn.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Problems, did_you_mean
from ..expr import Expr
from .checks import _compile, _date, _is_number, named_entries

KINDS = {"missing": "a feature's values lost in a share of the model-ready rows: feature -> {share, where}",
         "late": "a share of a history's rows arriving late: history -> {share, days}",
         "duplicates": "a share of a history's rows written twice: history -> {share}",
         "outages": "a history's rows not recorded for some partners and days: name -> {history, where, start, end}",
         "reactivations": "churned partners returning, each on its own day: {share, days, column}"}


@dataclass(frozen=True)
class Missing:
    """A feature whose value a share of the model-ready rows lose (where ``where`` holds)."""

    path: str
    column: str
    share: float
    where: Expr | None = None


@dataclass(frozen=True)
class Late:
    """A share of a history's rows that arrive a geometric number of days (mean ``days``) late."""

    path: str
    history: str
    share: float
    days: float


@dataclass(frozen=True)
class Duplicates:
    """A share of a history's rows written twice."""

    path: str
    history: str
    share: float


@dataclass(frozen=True)
class Outage:
    """Days (``start`` up to ``end``, excluded) on which no row of a history is recorded for
    the partners ``where`` holds for (everyone, without one)."""

    path: str
    name: str
    history: str
    start: np.datetime64
    end: np.datetime64
    where: Expr | None = None


@dataclass(frozen=True)
class Reactivations:
    """Churners returning: a share of them, a geometric number of days (mean ``days``) after
    they left, the day in the partners column ``column``."""

    path: str
    share: float
    days: float
    column: str


@dataclass(frozen=True)
class HistoryFaults:
    """What one history's table gets wrong."""

    late: Late | None = None
    duplicates: Duplicates | None = None
    outages: tuple[Outage, ...] = ()

    @property
    def paths(self) -> list[str]:
        return [f.path for f in (self.late, self.duplicates, *self.outages) if f is not None]


@dataclass(frozen=True)
class Faults:
    """The declared faults (empty: clean tables)."""

    missing: tuple[Missing, ...] = ()
    late: tuple[Late, ...] = ()
    duplicates: tuple[Duplicates, ...] = ()
    outages: tuple[Outage, ...] = ()
    reactivations: Reactivations | None = None

    def of_history(self, history: str) -> HistoryFaults | None:
        """The faults declared on ``history`` (None: its table is clean)."""
        found = HistoryFaults(next((f for f in self.late if f.history == history), None),
                              next((f for f in self.duplicates if f.history == history), None),
                              tuple(o for o in self.outages if o.history == history))
        return found if found.paths else None

    @property
    def of_histories(self) -> list[Late | Duplicates | Outage]:
        return [*self.late, *self.duplicates, *self.outages]


def parse(p: Problems, raw: Any) -> Faults:
    """The ``faults:`` mapping (None: no faults)."""
    if raw is None:
        return Faults()
    if not isinstance(raw, Mapping):
        p.add("faults", f"must be a mapping of fault kind -> declarations ({', '.join(KINDS)}), got {raw!r}")
        return Faults()
    for key in raw:
        if key not in KINDS:
            p.add(f"faults.{key}", f"unknown fault kind (known: {', '.join(KINDS)})" + did_you_mean(str(key), KINDS))
    return Faults(_missing(p, raw.get("missing")), *_per_history(p, raw), _outages(p, raw.get("outages")),
                  _reactivations(p, raw.get("reactivations")))


REACTIVATION_KEYS = ("share", "days", "column")


def _reactivations(p: Problems, raw: Any) -> Reactivations | None:
    """``reactivations``: {share, days, column}."""
    if raw is None:
        return None
    path = "faults.reactivations"
    if not isinstance(raw, Mapping):
        p.add(path, f"must be a mapping {{{', '.join(REACTIVATION_KEYS)}}}, got {raw!r}")
        return None
    for key in sorted(set(raw) - set(REACTIVATION_KEYS)):
        p.add(f"{path}.{key}", f"unknown key (known: {', '.join(REACTIVATION_KEYS)})"
              + did_you_mean(str(key), REACTIVATION_KEYS))
    share, days, column = _share(p, path, raw), raw.get("days"), raw.get("column")
    if not _is_number(days) or not 1 <= days <= 3650:
        p.add(f"{path}.days", f"must be the mean days from leaving to returning, a number in [1, 3650], got {days!r}")
        return None
    if not isinstance(column, str) or not column:
        p.add(f"{path}.column", f"must name the partners column of the day a churner returned, got {column!r}")
        return None
    return Reactivations(path, share, float(days), column) if share is not None else None


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
        share = _share(p, path, decl)
        if share is None:
            continue
        where = _compile(p, f"{path}.where", decl["where"]) if decl.get("where") is not None else None
        if decl.get("where") is not None and where is None:
            continue
        out.append(Missing(path, str(column), share, where))
    return tuple(out)


def _share(p: Problems, path: str, decl: Mapping) -> float | None:
    share = decl.get("share")
    if not _is_number(share) or not 0 <= share <= 1:
        p.add(f"{path}.share", f"must be a probability in [0, 1], got {share!r}")
        return None
    return float(share)


def _per_history(p: Problems, raw: Mapping) -> tuple[tuple[Late, ...], tuple[Duplicates, ...]]:
    """``late`` and ``duplicates``: history -> {share (, days)}."""
    out: dict[str, list] = {"late": [], "duplicates": []}
    for kind, keys in (("late", ("share", "days")), ("duplicates", ("share",))):
        decls = raw.get(kind)
        if decls is None:
            continue
        if not isinstance(decls, Mapping):
            p.add(f"faults.{kind}", f"must map a history to {{{', '.join(keys)}}}, got {decls!r}")
            continue
        for history, path, decl in named_entries(p, f"faults.{kind}", decls, "{" + ", ".join(keys) + "}"):
            for key in sorted(set(decl) - set(keys)):
                p.add(f"{path}.{key}", f"unknown key (known: {', '.join(keys)})" + did_you_mean(str(key), keys))
            share = _share(p, path, decl)
            if kind == "duplicates":
                if share is not None:
                    out[kind].append(Duplicates(path, history, share))
                continue
            days = decl.get("days")
            if not _is_number(days) or not 1 <= days <= 365:
                p.add(f"{path}.days", f"must be the mean delay of a late row in days, a number in [1, 365], got {days!r}")
            elif share is not None:
                out[kind].append(Late(path, history, share, float(days)))
    return tuple(out["late"]), tuple(out["duplicates"])


OUTAGE_KEYS = ("history", "where", "start", "end")


def _outages(p: Problems, raw: Any) -> tuple[Outage, ...]:
    """``outages``: name -> {history, where, start, end}."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        p.add("faults.outages", f"must map an outage's name to {{{', '.join(OUTAGE_KEYS)}}}, got {raw!r}")
        return ()
    out = []
    for name, path, decl in named_entries(p, "faults.outages", raw, "{" + ", ".join(OUTAGE_KEYS) + "}"):
        for key in sorted(set(decl) - set(OUTAGE_KEYS)):
            p.add(f"{path}.{key}", f"unknown key (known: {', '.join(OUTAGE_KEYS)})" + did_you_mean(str(key), OUTAGE_KEYS))
        history = decl.get("history")
        if not isinstance(history, str) or not history:
            p.add(f"{path}.history", f"must name a history (activity.histories), got {history!r}")
        start = _date(p, f"{path}.start", decl.get("start"))
        end = _date(p, f"{path}.end", decl.get("end"))
        if start is not None and end is not None and end <= start:
            p.add(f"{path}.end", f"must be after its start {start} (the first day recorded again), got {end}")
            end = None
        where = _compile(p, f"{path}.where", decl["where"]) if decl.get("where") is not None else None
        if decl.get("where") is not None and where is None:
            continue
        if isinstance(history, str) and history and start is not None and end is not None:
            out.append(Outage(path, name, history, start, end, where))
    return tuple(out)
