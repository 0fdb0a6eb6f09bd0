"""stats.json: every declared target beside its realized value, and a summary of every column.

Targets come from the stages (``Reviewed.review``), as records of ``review.data``: each
categorical and bernoulli column's weights (per `by` group too), each other sampler's
mean (and, for heavy tails, the top-20% share) from a large reference draw of the
declared distribution, the tier shares implied by the declared distributions, the churn
target rate, the intervention mix and every row of the treatment-effect table, the
network's fan-out, and the mean of each computed feature that measures a history input
drawn from a declared distribution. Here they become rows with a verdict. A target is a
miss when realized and declared differ by more than 4 standard errors (and 0.005); a
measured feature may differ by a tenth of the declared standard deviation more, because
integer counts and non-negative amounts cannot realize every draw (a partner with 2
logins a month cannot show a steep rise); a heavy tail's top-20% share converges slowly,
so it may differ by 2 points. Each row carries its standard error (``se``; none for a
tail's share), the ``tolerance`` its rule allows and the ``rule``, so that the report
shows why a row is or is not a miss.

Beside the targets: the stages' ``realized`` values, their ``standard_errors`` where they
have one (a diff of two runs weighs a move by them), and the ``headline``, the realized
values the report names first.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..stage import WorldSpec
from .data import AnyTarget, ArmContrasts, Auc, AucBounds, Drift, FeatureAucs, MeasuredTarget, Rate, TailTarget, Target
from .learnability import auc, auc_se, drift, feature_auc_ses, feature_aucs

QUANTILE_ROWS = 200_000


def _sig(x: float) -> float:
    """A standard error or tolerance for stats.json: six significant digits (a fixed number
    of decimals would print a small share's standard error as 0)."""
    return float(f"{x:.6g}")


def _verdict(name: str, declared: float, realized: float, se: float | None, n: int, kind: str,
             tolerance: float, rule: str) -> dict:
    """The row of a target: a miss when realized and declared differ by more than
    ``tolerance`` (the rule's, named by ``rule``), or without rows. ``se``: the realized
    value's standard error (None where the rule uses none)."""
    miss = bool(abs(realized - declared) > tolerance) if n else True
    return {"target": name, "kind": kind, "declared": round(float(declared), 6),
            "realized": round(float(realized), 6) if n else None, "n": int(n),
            "se": None if se is None or not n else _sig(se), "tolerance": _sig(tolerance), "rule": rule,
            "miss": miss}


def top20(x: np.ndarray) -> float:
    """The share of the total the largest 20% of the finite values hold (NaN without any)."""
    x = np.sort(x[np.isfinite(x)])
    return float(x[-max(len(x) // 5, 1):].sum() / x.sum()) if x.size and x.sum() else float("nan")


def row(t: AnyTarget) -> dict:
    """stats.json's row of one target record: declared, realized, n, the standard error,
    the tolerance of its rule (see the module docstring) and the verdict, then the record's
    extra keys."""
    match t:
        case Target():
            return {**_verdict(t.name, t.declared, t.realized, t.se, t.n, t.kind, max(4 * t.se, 0.005),
                               "4 SE or 0.005"), **t.extra}
        case MeasuredTarget(values=x):
            se = x.std() / np.sqrt(x.size) if x.size else 0.0
            return {**_verdict(t.name, t.declared, x.mean() if x.size else 0.0, se, x.size, t.kind,
                               4 * se + 0.1 * t.declared_sd, "4 SE + sd/10"), "declared_sd": t.declared_sd,
                    **t.extra}
        case TailTarget(values=x):
            return _verdict(t.name, top20(t.reference), top20(x), None, x.size, "share", t.band,
                            f"{t.band * 100:g} points")
    raise TypeError(f"not a target record: {t!r}")


def bound_rows(bounds: AucBounds, aucs: Mapping[str, float | None], ses: Mapping[str, float | None],
               n: int) -> list[dict]:
    """The target rows of the declared single-feature AUC bounds: the best feature at most
    the ceiling; every feature but the declared noise at least ``band`` from 0.5, each
    noise feature within it. A bound is missed when the realized value breaks it by more
    than 4 standard errors (the rule of every target: only a breach the sample shows is a
    miss); ``breached`` says whether it breaks it at all (benchmarks/declarations.py holds
    the shipped worlds to that at 100,000 partners)."""
    def bound(name: str, declared: float, realized: float, se: float | None, n_side: int, note: str) -> dict:
        over = n_side * (realized - declared)             # > 0: on the wrong side of the bound
        se = se or 0.0
        return {"target": name, "kind": "bound", "declared": round(declared, 6), "realized": round(realized, 6),
                "n": int(n), "se": _sig(se), "tolerance": _sig(4 * se), "rule": "4 SE beyond the bound",
                "miss": bool(over > 4 * se), "breached": bool(over > 0), "note": note}

    scored = {f: a for f, a in aucs.items() if a is not None}
    out = []
    if bounds.ceiling is not None and scored:
        best = max(scored, key=scored.get)
        out.append(bound(f"{bounds.path}.feature_auc_max", bounds.ceiling, scored[best], ses.get(best), 1,
                         f"the best single-feature AUC ({best}) at most the ceiling"))
    if bounds.band is not None:
        for f, a in scored.items():
            noise = f in bounds.noise
            out.append(bound(f"{bounds.path}.{'noise' if noise else 'signal'}.{f}", bounds.band, a - 0.5,
                             ses.get(f), 1 if noise else -1,
                             f"declared noise: its AUC within {bounds.band} of 0.5" if noise else
                             f"carries signal: its AUC at least {bounds.band} from 0.5 (else declare it noise)"))
    return out


def measure(key: str, value: object) -> tuple[dict[str, object], dict[str, object]]:
    """A stage's realized value as stats.json keys, and the standard errors of those that
    have one (under the same keys): a measure record computed here (a rate, an AUC, or each
    feature's AUC and the best), anything else as it is."""
    match value:
        case Rate(values=x):
            p = float(np.mean(x)) if len(x) else float("nan")
            return {key: round(p, value.digits)}, ({key: _sig(np.sqrt(p * (1 - p) / len(x)))} if len(x) else {})
        case Auc(label=y):
            a = auc(y, value.score)
            se = auc_se(a, int(np.count_nonzero(y)), int(np.size(y) - np.count_nonzero(y)))
            return {key: round(a, value.digits)}, ({key: _sig(se)} if se is not None else {})
        case FeatureAucs():
            aucs = feature_aucs(value.frame, value.label, list(value.features))
            ses = {f: None if e is None else _sig(e)
                   for f, e in feature_auc_ses(value.frame, value.label, aucs).items()}
            scored = [f for f, a in aucs.items() if a is not None]
            best = max(scored, key=aucs.get) if scored else None
            return ({key: aucs, value.best: aucs[best] if best else None},
                    {key: ses, **({value.best: ses[best]} if best else {})})
        case ArmContrasts():
            return {key: contrasts(value)}, {}
        case Drift():
            out, ses = drift(value.frame, value.label, list(value.features), value.snapshot, dict(value.phases))
            out = {"declared": list(value.declared), "first_shock": value.start,
                   "model": "logistic regression on the features, fitted on the snapshots before the shocks", **out}
            return {key: out}, {key: {k: _sig(v) for k, v in ses.items() if v is not None}}
    return {key: value}, {}


def contrasts(value: ArmContrasts) -> dict[str, dict]:
    """Per type but the control: its true average effect over the decisions and its mean
    relative effect (effect / base, where the base is above 0), the naive and the weighted
    (IPW) estimate, each with its standard error and its distance from the truth in SEs."""
    from ..ope import arm_contrast

    f, truth = value.frame, value.truth
    a = pd.Categorical(f[value.type], categories=list(value.types)).codes
    y = (f[value.outcome] == value.churned).to_numpy(dtype=float)
    cluster = pd.factorize(f[value.key])[0]
    base = truth[value.base].to_numpy(dtype=float)
    c = value.types.index(value.control)
    finite = lambda x: x if np.isfinite(x) else None           # (an empty arm: nothing to estimate)
    out = {}
    for j, (kind, column) in enumerate(zip(value.types, value.effects)):
        if j == c:
            continue
        effect = truth[column].to_numpy(dtype=float)
        est = arm_contrast(y, a, f[value.propensity].to_numpy(dtype=float), j, c, cluster)
        true = float(effect.mean()) if effect.size else float("nan")
        out[kind] = {"decisions": int(np.count_nonzero(a == j)), "truth": finite(round(true, 6)),
                     "relative_effect": round(float((effect[base > 0] / base[base > 0]).mean()), 6)
                     if (base > 0).any() else None,
                     **{name: finite(_sig(est[name])) for name in ("naive", "naive_se", "ipw", "ipw_se")},
                     **{f"{name}_z": finite(round((est[name] - true) / est[f"{name}_se"], 2))
                        if est[f"{name}_se"] > 0 else None for name in ("naive", "ipw")}}
    return out


def _summary(series: pd.Series) -> dict:
    n = len(series)
    nulls = int(series.isna().sum())
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or pd.api.types.is_string_dtype(series):
        counts = series.value_counts()
        if len(counts) > 50:
            return {"count": n, "nulls": nulls, "distinct": int(series.nunique())}
        return {"count": n, "nulls": nulls, "shares": {str(k): round(v / n, 6) for k, v in counts.items()}}
    if series.dtype == bool:
        return {"count": n, "nulls": nulls, "rate": round(float(series.mean()), 6)}
    if series.dtype.kind == "M":
        return {"count": n, "nulls": nulls, "min": str(series.min()), "max": str(series.max())}
    x = series.to_numpy(dtype=float, na_value=np.nan)
    x = x[~np.isnan(x)]
    if not x.size:
        return {"count": n, "nulls": nulls}
    # quartiles from an evenly spaced subset of at most QUANTILE_ROWS values (sorted work
    # grows with n; the subset's quartiles are within ~0.3% of rank); the rest is exact
    sub = x if x.size <= QUANTILE_ROWS else x[np.linspace(0, x.size - 1, QUANTILE_ROWS).astype(np.int64)]
    q = np.percentile(sub, [25, 50, 75])
    return {"count": n, "nulls": nulls, "mean": round(float(x.mean()), 6), "std": round(float(x.std()), 6),
            "min": float(x.min()), "p25": float(q[0]), "p50": float(q[1]), "p75": float(q[2]), "max": float(x.max())}


def build(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], invariants=None) -> dict:
    """The run's statistics: every stage's declared targets beside realized values (each
    tagged with its stage), the stages' headline figures, and column summaries.
    ``invariants``: the counts validation found, a callable that waits for them, or None
    to count them here."""
    targets, realized, errors, headline = [], {}, {}, []
    for stage in spec.stages:
        review = stage.review(spec, tables)
        targets += [{**row(t), "stage": stage.name} for t in review.targets]
        for key, value in review.realized.items():
            values, ses = measure(key, value)
            for k, v in values.items():               # (two stages' mappings under one key merge: faults)
                realized[k] = {**realized[k], **v} if isinstance(v, dict) and isinstance(realized.get(k), dict) else v
            errors.update(ses)
            if isinstance(value, FeatureAucs) and value.bounds is not None:
                targets += [{**r, "stage": stage.name}
                            for r in bound_rows(value.bounds, values[key], ses[key], len(value.frame))]
        headline += [{"key": h.key, "label": h.label, "form": h.form} for h in review.headline]
    from .. import invariants as world_invariants

    counted = invariants() if callable(invariants) else invariants
    return {
        "seed": spec.seed,
        "n_partners": spec.n,
        **({"timeline": spec.timeline.manifest()} if spec.timeline else {}),
        "invariants": world_invariants.check(spec, tables) if counted is None else counted,
        "targets": targets,
        "misses": sum(t["miss"] for t in targets),
        "realized": realized,
        "standard_errors": errors,
        "headline": [h for h in headline if realized.get(h["key"]) is not None],
        "columns": {name: {c: _summary(frame[c]) for c in frame.columns if c != spec.key
                           and not c.endswith("_id")}
                    for name, frame in tables.items()},
    }
