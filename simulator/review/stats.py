"""stats.json: every declared target beside its realized value, and a summary of every column.

Targets come from the stages (``Stage.review``), as records of ``review.data``: each
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
so it may differ by 2 points.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..stage import WorldSpec
from .data import AnyTarget, Auc, FeatureAucs, MeasuredTarget, TailTarget, Target
from .learnability import auc, feature_aucs

QUANTILE_ROWS = 200_000


def _verdict(name: str, declared: float, realized: float, se: float, n: int, kind: str) -> dict:
    """The row of a target: a miss beyond 4 standard errors (and 0.005), or without rows."""
    miss = bool(abs(realized - declared) > max(4 * se, 0.005)) if n else True
    return {"target": name, "kind": kind, "declared": round(float(declared), 6),
            "realized": round(float(realized), 6) if n else None, "n": int(n), "miss": miss}


def top20(x: np.ndarray) -> float:
    """The share of the total the largest 20% of the finite values hold (NaN without any)."""
    x = np.sort(x[np.isfinite(x)])
    return float(x[-max(len(x) // 5, 1):].sum() / x.sum()) if x.size and x.sum() else float("nan")


def row(t: AnyTarget) -> dict:
    """stats.json's row of one target record: declared, realized, n, the verdict, then the
    record's extra keys."""
    match t:
        case Target():
            return {**_verdict(t.name, t.declared, t.realized, t.se, t.n, t.kind), **t.extra}
        case MeasuredTarget(values=x):
            # the tolerance of a measured feature: see the module docstring
            se = x.std() / np.sqrt(x.size) if x.size else 0.0
            out = _verdict(t.name, t.declared, x.mean() if x.size else 0.0, se, x.size, t.kind)
            out["miss"] = bool(abs(out["realized"] - out["declared"]) > 4 * se + 0.1 * t.declared_sd) \
                if x.size else True
            return {**out, **t.extra}
        case TailTarget(values=x):
            realized, declared = top20(x), top20(t.reference)
            out = _verdict(t.name, declared, realized, 0.005, x.size, "share")
            out["miss"] = bool(abs(realized - declared) > t.band)
            return out
    raise TypeError(f"not a target record: {t!r}")


def measure(key: str, value: object) -> dict[str, object]:
    """A stage's realized value as stats.json keys: a measure record computed here (an AUC,
    or each feature's AUC and the best), anything else as it is."""
    match value:
        case Auc():
            return {key: round(auc(value.label, value.score), value.digits)}
        case FeatureAucs():
            aucs = feature_aucs(value.frame, value.label, list(value.features))
            scored = [a for a in aucs.values() if a is not None]
            return {key: aucs, value.best: max(scored) if scored else None}
    return {key: value}


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
    targets, realized = [], {}
    for stage in spec.stages:
        review = stage.review(spec, tables)
        targets += [{**row(t), "stage": stage.name} for t in review.targets]
        for key, value in review.realized.items():
            realized.update(measure(key, value))
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
        "columns": {name: {c: _summary(frame[c]) for c in frame.columns if c != spec.key
                           and not c.endswith("_id")}
                    for name, frame in tables.items()},
    }
