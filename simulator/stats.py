"""stats.json: every declared target beside its realized value, and a summary of every column.

Targets come from the spec, not from a list kept by hand: each categorical and bernoulli
column's weights (per `by` group too), each other sampler's mean (and, for heavy tails,
the top-20% share) from a large reference draw of the declared distribution, the tier
shares implied by the declared distributions, the churn target rate, the intervention
mix and every row of the treatment-effect table, the network's fan-out, and the mean of
each computed feature that measures a history input drawn from a declared distribution
(e.g. the login trend per churn label). A target is a miss when realized and declared
differ by more than 4 standard errors (and 0.005); a measured feature may differ by a
tenth of the declared standard deviation more, because integer counts and non-negative
amounts cannot realize every draw (a partner with 2 logins a month cannot show a steep
rise).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .distributions import SAMPLERS
from .spec import ColumnSpec, WorldSpec
from .stages import columns
from .streams import stream

REFERENCE_ROWS = 100_000
QUANTILE_ROWS = 200_000
HEAVY_TAILED = ("pareto", "lognormal")


def target(name: str, declared: float, realized: float, se: float, n: int, kind: str) -> dict:
    miss = bool(abs(realized - declared) > max(4 * se, 0.005)) if n else True
    return {"target": name, "kind": kind, "declared": round(float(declared), 6),
            "realized": round(float(realized), 6) if n else None, "n": int(n), "miss": miss}


def measured_target(name: str, declared: float, x: np.ndarray, declared_sd: float, kind: str) -> dict:
    """A feature measured from data beside its declared mean: a miss beyond 4 standard
    errors of the realized mean plus a tenth of the declared standard deviation (integer
    counts and non-negative amounts cannot realize every draw; see the module docstring)."""
    se = x.std() / np.sqrt(x.size) if x.size else 0.0
    t = target(name, declared, x.mean() if x.size else 0.0, se, x.size, kind)
    t["miss"] = bool(abs(t["realized"] - t["declared"]) > 4 * se + 0.1 * declared_sd) if x.size else True
    return t


def share_targets(path: str, labels, weights, values: pd.Series) -> list[dict]:
    n = len(values)
    counts = values.value_counts()
    out = []
    for label, w in zip(labels, weights):
        share = counts.get(label, 0) / n if n else 0.0
        out.append(target(f"{path}.{label}", w, share, np.sqrt(w * (1 - w) / max(n, 1)), n, "share"))
    return out


def top20(x: np.ndarray) -> float:
    x = np.sort(x[np.isfinite(x)])
    return float(x[-max(len(x) // 5, 1):].sum() / x.sum()) if x.size and x.sum() else float("nan")


def groups(col: ColumnSpec, partners: pd.DataFrame):
    """(label, row mask, per-group params) for each `by` value, or one group for all rows."""
    if col.by is None:
        yield "", np.ones(len(partners), dtype=bool), col.params, col.weights
        return
    if col.by not in partners:                 # a latent helper column: its groups are not observable
        return
    by = partners[col.by]
    for i, key in enumerate(col.by_keys):
        params = {k: (v[i] if isinstance(v, np.ndarray) else v) for k, v in col.params.items()}
        weights = col.weights[i] if col.weights is not None else None
        yield f"[{col.by}={key}]", np.asarray(by == key), params, weights


def column_targets(spec: WorldSpec, col: ColumnSpec, partners: pd.DataFrame) -> list[dict]:
    if col.name not in partners.columns:
        return []
    out = []
    path = f"{col.path}"
    for label, mask, params, weights in groups(col, partners):
        values = partners.loc[mask, col.name]
        if col.kind == "categorical":
            shares = share_targets(f"{path}{label}.weights", col.domain.categories, weights, values)
            out += [{**t, "column": col.name, "label": str(k), "conditional": col.by is not None}
                    for t, k in zip(shares, col.domain.categories)]
        elif col.sampler == "bernoulli":
            p = float(params["p"])
            n = len(values)
            out.append(target(f"{path}{label}.p", p, values.mean() if n else 0, np.sqrt(p * (1 - p) / max(n, 1)),
                               n, "rate"))
        else:
            ref = columns.finish(col, SAMPLERS[col.sampler].draw(
                stream(spec.seed, "reference", col.name, label), REFERENCE_ROWS, **params)).astype(float)
            x = values.to_numpy(dtype=float)
            out.append(target(f"{path}{label}.mean", ref.mean(), x.mean() if x.size else 0,
                               ref.std() / np.sqrt(max(x.size, 1)), x.size, "mean"))
            if col.sampler in HEAVY_TAILED:
                # the top-20% share of a heavy tail converges slowly: a 2% band, not 4 SE
                realized = top20(x)
                declared = top20(ref)
                t = target(f"{path}{label}.top20_share", declared, realized, 0.005, x.size, "share")
                t["miss"] = bool(abs(realized - declared) > 0.02)
                out.append(t)
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
    tagged with its stage), the stages' headline figures, and column summaries."""
    targets, realized = [], {}
    for stage in spec.stages:
        for t in stage.targets(spec, tables):
            targets.append({**t, "stage": stage.name})
        realized.update(stage.realized(spec, tables))
    from . import invariants as world_invariants

    # the counts validation found (a callable waits for it), else counted here
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
