"""The churn model: additive log-odds rules, logistic noise, a calibrated intercept.

Kind ``churn``. A partner churns when ``intercept + score + noise > 0`` with standard
logistic noise, so its churn probability is ``sigmoid(intercept + score)``. Calibration
picks the intercept that makes the realized churn rate of the calibrated rows equal the
target: the midpoint between the k-th and (k+1)-th largest ``score + noise`` with
k = round(target * rows). That is the exact root of "realized rate - target" that a root
finder would bracket. The step is splittable (simulator.plan): when its rules read a
scoped stage's columns, the first pass calibrates and the second reuses the intercept.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dates import days_before
from ..errors import Problems
from ..expr import evaluate
from ..plan import Step
from ..spec.checks import _compile, _is_number, named_entries
from ..spec.columns import _column
from ..spec.model import ColumnSpec, Domain, RuleSpec
from ..spec.shape import Open
from ..stage import BaseStage, ParseContext, RunContext
from . import columns


def score(rules: tuple[RuleSpec, ...], env: Mapping[str, object], n: int) -> np.ndarray:
    """Sum of weight * rule value per row; a rule on a missing (null) value adds nothing."""
    total = np.zeros(n)
    for rule in rules:
        value = np.asarray(evaluate(rule.expr, env, n), dtype=float)
        total += rule.weight * np.nan_to_num(value, nan=0.0)
    return total


def calibrate(latent: np.ndarray, target_rate: float) -> float:
    """The intercept b such that exactly round(target * len) rows have latent + b > 0."""
    m = latent.size
    k = int(round(target_rate * m))
    if m == 0:
        return 0.0
    ordered = np.sort(latent)[::-1]
    if k <= 0:
        return float(-ordered[0] - 1.0)
    if k >= m:
        return float(-ordered[-1] + 1.0)
    return float(-(ordered[k - 1] + ordered[k]) / 2.0)


def probability(scores: np.ndarray, intercept: float) -> np.ndarray:
    """The model's churn probability: sigmoid(intercept + score)."""
    return 1.0 / (1.0 + np.exp(-(scores + intercept)))


@dataclass(frozen=True)
class Churn(BaseStage):
    name: str
    kind: str
    label: str
    probability: str
    target_rate: float
    rules: tuple[RuleSpec, ...]
    date_column: str
    date: ColumnSpec                          # days before as_of, drawn per churner
    joined: str                               # the joining date column it writes
    tenure: str                               # days from joining to the observation end (a partners column)
    observed: str                             # helper: each partner's observation end

    def writes(self) -> dict[str, Domain]:
        return _owned(self.label, self.probability, self.date_column, self.joined, self.observed)

    def output_columns(self) -> list[str]:
        return [self.joined, self.label, self.date_column]

    def roles(self) -> dict[str, str]:
        return {"label": self.label, "probability": self.probability, "event_date": self.date_column,
                "joined": self.joined, "observed_end": self.observed}

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return [(r.path, r.expr.names) for r in self.rules]

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        if domains.get(self.tenure, Domain("")).dtype not in ("int", "any"):
            p.add(f"{self.name}.joined.tenure_days", f"must name an integer partners column (days from joining "
                  f"to the observation end), got {self.tenure!r}")

    def steps(self) -> list[Step]:
        reads = frozenset().union(*(r.expr.names for r in self.rules), [self.tenure])
        return [Step(self, self.name, reads, frozenset(self.writes()), path=f"{self.name}.rules",
                     splittable=True)]

    def run(self, step: Step, ctx: RunContext) -> None:
        env, n = ctx.env, ctx.n
        if step.scope is None:
            rows = np.ones(n, dtype=bool)
        else:
            side, col = step.scope
            inside = np.asarray(env[col], dtype=bool)
            rows = inside if side == "inside" else ~inside
        scores = score(self.rules, env, n)
        latent = scores + ctx.rng("churn", "noise").logistic(size=n)
        if step.scope is None or step.scope[0] == "outside":   # calibrate on the first (or only) pass
            ctx.facts["churn_intercept"] = calibrate(latent[rows], self.target_rate)
        intercept = ctx.facts["churn_intercept"]
        label = env[self.label].copy()
        label[rows] = latent[rows] + intercept > 0
        label = ctx.gold.apply(self.label, label)
        prob = env[self.probability].copy()
        prob[rows] = probability(scores[rows], intercept)
        days = columns.produce(self.date, {}, n, ctx.rng("churn", "date"), ctx.world.as_of)
        when = env[self.date_column].copy()
        churned_on = days_before(ctx.world.as_of, days[rows])
        when[rows] = np.where(label[rows], churned_on, np.datetime64("NaT", "us"))
        env[self.label], env[self.probability], env[self.date_column] = label, prob, when
        observed = np.full(n, ctx.world.feature_date)
        env[self.observed], env[self.joined] = observed, days_before(observed, np.asarray(env[self.tenure]))

    def row_checks(self) -> list:
        import pandera.pandas as pa

        return [(frozenset([self.label, self.date_column]),
                 pa.Check(lambda df: df[self.label] == df[self.date_column].notna(),
                          name=f"{self.date_column} set exactly for churners"))]

    def targets(self, world, tables) -> list[dict]:
        from ..stats import target

        partners, r = tables[world.table], self.target_rate
        return [target(f"{self.name}.target_rate", r, partners[self.label].mean(),
                       np.sqrt(r * (1 - r) / len(partners)), len(partners), "rate")]

    def realized(self, world, tables) -> dict[str, object]:
        return {"churn_rate": round(float(tables[world.table][self.label].mean()), 6)}


def _owned(label: str, probability: str, date: str, joined: str, observed: str) -> dict[str, Domain]:
    return {label: Domain("bool"), probability: Domain("float"), date: Domain("datetime", nullable=True),
            joined: Domain("datetime"), observed: Domain("datetime")}


def rules(p: Problems, path: str, rules: Any, numeric: bool) -> list[RuleSpec]:
    """Named rules (a mapping name -> rule; a rule set to null is left out): ``when`` a
    boolean expression, or with ``numeric`` also ``value``, and a ``weight``."""
    out = []
    if not isinstance(rules, Mapping) or not any(r is not None for r in rules.values()):
        p.add(path, "must declare at least one rule (a mapping of name -> rule)")
        return out
    for name, rpath, rule in named_entries(p, path, rules, "'when' and its settings"):
        if numeric and ("when" in rule) == ("value" in rule):
            p.add(rpath, "needs exactly one of 'when' (boolean) or 'value' (numeric)")
            continue
        if not numeric and "when" not in rule:
            p.add(rpath, "needs 'when' (a boolean expression)")
            continue
        key = "when" if "when" in rule else "value"
        expr = _compile(p, f"{rpath}.{key}", rule[key])
        weight = rule.get("weight", 0.0)
        if numeric and not _is_number(weight):
            p.add(f"{rpath}.weight", f"must be a number (log-odds), got {weight!r}")
            continue
        if expr is not None:
            out.append(RuleSpec(str(name), rpath, expr, float(weight)))
    return out


class ChurnKind:
    name = "churn"
    defines_entity = False
    shape = {"kind": None, "label": None, "probability": None, "target_rate": None,
             "rules": Open({"when": None, "value": None, "weight": None}),
             "churn_date": {"column": None, "days_before": None},
             "joined": {"column": None, "tenure_days": None}, "observed_until": None}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        date, joined = c.get("churn_date") or {}, c.get("joined") or {}
        return _owned(str(c.get("label", "churn_label")), str(c.get("probability", "churn_probability")),
                      str(date.get("column", "churned_at")), str(joined.get("column", "created_at")),
                      str(c.get("observed_until", "observed_until")))

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Churn | None:
        rate = c.get("target_rate")
        if not _is_number(rate) or not 0 < rate < 1:
            p.add(f"{group}.target_rate", f"must be a rate strictly between 0 and 1, got {rate!r}")
        parsed = rules(p, f"{group}.rules", c.get("rules"), numeric=True)
        date = c.get("churn_date") or {}
        date_col = _column(p, str(date.get("column", "churned_at")), date.get("days_before"),
                           f"{group}.churn_date.days_before", {})
        if date_col is not None and date_col.kind != "sample":
            p.add(f"{group}.churn_date.days_before", "must be a sampler (e.g. dist: integers)")
        if not _is_number(rate) or date_col is None:
            return None
        return Churn(group, self.name, str(c.get("label", "churn_label")),
                     str(c.get("probability", "churn_probability")), float(rate), tuple(parsed),
                     str(date.get("column", "churned_at")), date_col,
                     str((c.get("joined") or {}).get("column", "created_at")),
                     str((c.get("joined") or {}).get("tenure_days", "tenure_days")),
                     str(c.get("observed_until", "observed_until")))


KIND = ChurnKind()
