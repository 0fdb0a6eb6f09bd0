"""Shocks: dated events that change declared parameters for the partners a condition holds for.

The top-level ``shocks`` mapping (conf/shocks/, experiment=payment_crisis) names each
event. A shock has a ``start`` date, an optional ``end`` (the first day it no longer acts;
null: to as_of), a ``where`` condition over partner columns (null: every partner) and its
``effects``, each of one kind:

- ``multiply``: a population column's sampler parameter (``population.columns.<column>.<parameter>``:
  a bernoulli's ``p``, a poisson's ``lam``) by a factor, so the column's draws follow it;
- ``shift``: the churn hazard's log-odds (the churn group, ``churn``) by an amount: a number, or
  an expression over partner columns (``where(avg_commission_3m > 1500, 2.5, 0.5)``);
- ``scale``: an intervention type's declared effect (``interventions.effects.<type>``) by
  a factor.

The stage that owns a parameter applies its effects (a kind claims them when it is
parsed, :meth:`simulator.stage.ParseContext.shock_effects`); an effect no stage claims is
refused with its path. A shock acts on every period that starts on or after its start and
before its end, on the partners ``where`` holds for in the state at that period's start:
the state, the hazard and the decisions of the period all follow it, so the truth does.
Shocks need a horizon of snapshots (``timeline.snapshots`` > 1) that starts before them:
the churn intercept is solved in the periods before the first shock and held from it on,
so the shock moves churn instead of the calibration absorbing it (simulator.stages.churn).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Problems, did_you_mean
from ..expr import Expr, evaluate
from .checks import _compile, _date, _is_number, named_entries

KINDS = {"multiply": "a population column's sampler parameter by a factor > 0 "
                     "(population.columns.<column>.<parameter>)",
         "shift": "the churn hazard's log-odds by an amount, a number or an expression over partner columns "
                  "(the churn group: churn)",
         "scale": "an intervention type's declared effect by a factor >= 0 (interventions.effects.<type>)"}
SHAPE = {"start": None, "end": None, "where": None, "effects": None}


@dataclass(frozen=True)
class ShockEffect:
    path: str                 # its config path: shocks.<name>.effects[<i>]
    kind: str                 # multiply | shift | scale
    target: str               # the parameter's config path (population.columns.delay_drawn.p)
    by: float | Expr          # the factor (multiply, scale) or the log-odds amount (shift: or an expression)


@dataclass(frozen=True)
class Shock:
    name: str
    path: str
    start: np.datetime64      # the first day it acts
    end: np.datetime64 | None  # the first day it no longer acts (None: it lasts)
    where: Expr | None        # the partners it acts on (None: all)
    effects: tuple[ShockEffect, ...]

    def on(self, day: np.datetime64) -> bool:
        """Whether it acts on a period starting ``day``."""
        day = np.datetime64(day, "D")
        return bool(day >= self.start and (self.end is None or day < self.end))

    def declared(self) -> dict[str, Any]:
        """The declaration as plain data (stats.json)."""
        return {"name": self.name, "start": str(self.start), "end": None if self.end is None else str(self.end),
                "where": None if self.where is None else self.where.source,
                "effects": [{e.kind: e.target, "by": e.by.source if isinstance(e.by, Expr) else e.by}
                            for e in self.effects]}

    def rows(self, env: Mapping[str, object], n: int) -> np.ndarray:
        """The rows ``where`` holds for in the state ``env``."""
        if self.where is None:
            return np.ones(n, dtype=bool)
        return np.asarray(evaluate(self.where, env, n), dtype=bool)


def applied(effects: Sequence[tuple[Shock, ShockEffect]], day: np.datetime64, env: Mapping[str, object],
            n: int, add: bool = False) -> np.ndarray | None:
    """Per row, what ``effects`` make of a parameter on a period starting ``day``: the product
    of the factors of the shocks that act on it and hold for the row (``add``: the sum of the
    amounts), or None when none acts that day (the parameter as declared)."""
    acting = [(s, e) for s, e in effects if s.on(day)]
    if not acting:
        return None
    out = np.full(n, 0.0 if add else 1.0)
    for shock, effect in acting:
        rows = shock.rows(env, n)
        if add:
            out[rows] += effect.by if not isinstance(effect.by, Expr) else \
                np.asarray(evaluate(effect.by, env, n), dtype=float)[rows]
        else:
            out[rows] *= effect.by
    return out


def reads(effects: Sequence[tuple[Shock, ShockEffect]]) -> frozenset[str]:
    """The columns ``effects`` read: their shocks' conditions, and an amount's expression."""
    return frozenset().union(*(s.where.names for s, _ in effects if s.where is not None),
                             *(e.by.names for _, e in effects if isinstance(e.by, Expr)))


def first_start(shocks: Sequence[Shock]) -> np.datetime64 | None:
    """The first day any shock acts (None: no shocks)."""
    return min((s.start for s in shocks), default=None)


def phases(timeline, first: np.datetime64 | None) -> list[str]:
    """Each snapshot's place beside the first shock (starting ``first``; None: no shock):
    ``before`` (its label window's periods all start before it), ``after`` (the snapshot is
    on or after it, so its features and label are the shock's) or ``across``."""
    dates = timeline.period_dates()
    out = []
    for k, day in enumerate(timeline.snapshot_dates()):
        if first is None or dates[k + timeline.episodes - 1] < first:
            out.append("before")
        else:
            out.append("after" if day >= first else "across")
    return out


def _effect(p: Problems, path: str, raw: Any) -> ShockEffect | None:
    if not isinstance(raw, Mapping):
        p.add(path, f"must be one of {{multiply: <parameter>, by: <factor>}}, {{shift: <churn group>, by: "
                    f"<log-odds>}} or {{scale: <intervention effect>, by: <factor>}}, got {raw!r}")
        return None
    kinds = [k for k in raw if k in KINDS]
    unknown = [k for k in raw if k not in KINDS and k != "by"]
    for k in unknown:
        p.add(f"{path}.{k}", "unknown key" + did_you_mean(str(k), [*KINDS, "by"]))
    if len(kinds) != 1:
        p.add(path, "needs exactly one kind of effect: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()))
        return None
    kind = kinds[0]
    target, by = raw[kind], raw.get("by")
    ok = True
    if kind == "shift" and isinstance(by, str):          # an amount per partner
        expr = _compile(p, f"{path}.by", by)
        return ShockEffect(path, kind, target, expr) if expr is not None and isinstance(target, str) \
            and target and not unknown else None
    if not isinstance(target, str) or not target:
        p.add(f"{path}.{kind}", f"must name the parameter it changes ({KINDS[kind]}), got {target!r}")
        ok = False
    if not _is_number(by) or not np.isfinite(by) or (kind == "multiply" and by <= 0) or (kind == "scale" and by < 0):
        bound = {"multiply": "a number > 0", "scale": "a number >= 0",
                 "shift": "a finite number, or an expression over partner columns"}[kind]
        p.add(f"{path}.by", f"must be {bound}, got {by!r}")
        ok = False
    return ShockEffect(path, kind, target, float(by)) if ok and not unknown else None


def parse(p: Problems, raw: Any, timeline) -> tuple[Shock, ...]:
    """The declared shocks (``raw``: the ``shocks`` mapping, None or {}: none), checked
    against the world's ``timeline`` (None when it is invalid: the dates are not checked)."""
    if raw is None or raw == {}:
        return ()
    if not isinstance(raw, Mapping):
        p.add("shocks", f"must map each shock's name to its start, end, where and effects, got {raw!r}")
        return ()
    out = []
    for name, path, entry in named_entries(p, "shocks", raw, "start, end, where and effects"):
        for key in entry:
            if key not in SHAPE:
                p.add(f"{path}.{key}", "unknown key" + did_you_mean(str(key), SHAPE))
        start = _date(p, f"{path}.start", entry.get("start"))
        end = _date(p, f"{path}.end", entry["end"]) if entry.get("end") is not None else None
        where = _compile(p, f"{path}.where", entry["where"]) if entry.get("where") is not None else None
        raw_effects = entry.get("effects")
        if not isinstance(raw_effects, Sequence) or isinstance(raw_effects, str) or not raw_effects:
            p.add(f"{path}.effects", f"must be a non-empty list of effects ({', '.join(KINDS)}), got {raw_effects!r}")
            raw_effects = []
        effects = [_effect(p, f"{path}.effects[{i}]", e) for i, e in enumerate(raw_effects)]
        if start is not None and end is not None and end <= start:
            p.add(f"{path}.end", f"must be after its start {start}, got {end}")
        if start is not None and timeline is not None:
            dates = timeline.period_dates()
            if timeline.snapshots == 1:
                p.add(path, "a shock needs a horizon of snapshots (timeline.snapshots > 1, e.g. experiment=horizon): "
                            "the churn calibration is measured in the periods before it")
            elif start <= np.datetime64(dates[0], "D"):
                p.add(f"{path}.start", f"must be after the horizon's first period start {np.datetime64(dates[0], 'D')} "
                      f"(the churn calibration is measured in the periods before the first shock), got {start}")
            elif start > np.datetime64(dates[-1], "D"):
                p.add(f"{path}.start", f"starts after the last period's start {np.datetime64(dates[-1], 'D')}: "
                      f"it would change nothing, got {start}")
        if start is not None and all(e is not None for e in effects) and effects:
            out.append(Shock(name, path, start, end, where, tuple(effects)))
    return tuple(out)
