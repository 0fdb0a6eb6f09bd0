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
import pyarrow as pa
import pyarrow.compute as pc

from .distributions import SAMPLERS
from .plan import build_plan
from .spec import ColumnSpec, WorldSpec
from .stages import columns, interventions
from .stages.golden import pre_stage
from .streams import stream

REFERENCE_ROWS = 100_000
QUANTILE_ROWS = 200_000
HEAVY_TAILED = ("pareto", "lognormal")


def _target(name: str, declared: float, realized: float, se: float, n: int, kind: str) -> dict:
    miss = bool(abs(realized - declared) > max(4 * se, 0.005)) if n else True
    return {"target": name, "kind": kind, "declared": round(float(declared), 6),
            "realized": round(float(realized), 6) if n else None, "n": int(n), "miss": miss}


def _share_targets(path: str, labels, weights, values: pd.Series) -> list[dict]:
    n = len(values)
    counts = values.value_counts()
    out = []
    for label, w in zip(labels, weights):
        share = counts.get(label, 0) / n if n else 0.0
        out.append(_target(f"{path}.{label}", w, share, np.sqrt(w * (1 - w) / max(n, 1)), n, "share"))
    return out


def _top20(x: np.ndarray) -> float:
    x = np.sort(x[np.isfinite(x)])
    return float(x[-max(len(x) // 5, 1):].sum() / x.sum()) if x.size and x.sum() else float("nan")


def _groups(col: ColumnSpec, partners: pd.DataFrame):
    """(label, row mask, per-group params) for each `by` value, or one group for all rows."""
    if col.by is None:
        yield "", np.ones(len(partners), dtype=bool), col.params, col.weights
        return
    by = partners[col.by]
    for i, key in enumerate(col.by_keys):
        params = {k: (v[i] if isinstance(v, np.ndarray) else v) for k, v in col.params.items()}
        weights = col.weights[i] if col.weights is not None else None
        yield f"[{col.by}={key}]", np.asarray(by == key), params, weights


def _column_targets(spec: WorldSpec, col: ColumnSpec, partners: pd.DataFrame) -> list[dict]:
    if col.name not in partners.columns:
        return []
    out = []
    path = f"{col.path}"
    for label, mask, params, weights in _groups(col, partners):
        values = partners.loc[mask, col.name]
        if col.kind == "categorical":
            out += _share_targets(f"{path}{label}.weights", col.domain.categories, weights, values)
        elif col.sampler == "bernoulli":
            p = float(params["p"])
            n = len(values)
            out.append(_target(f"{path}{label}.p", p, values.mean() if n else 0, np.sqrt(p * (1 - p) / max(n, 1)),
                               n, "rate"))
        else:
            ref = columns.finish(col, SAMPLERS[col.sampler].draw(
                stream(spec.seed, "reference", col.name, label), REFERENCE_ROWS, **params)).astype(float)
            x = values.to_numpy(dtype=float)
            out.append(_target(f"{path}{label}.mean", ref.mean(), x.mean() if x.size else 0,
                               ref.std() / np.sqrt(max(x.size, 1)), x.size, "mean"))
            if col.sampler in HEAVY_TAILED:
                # the top-20% share of a heavy tail converges slowly: a 2% band, not 4 SE
                realized = _top20(x)
                declared = _top20(ref)
                t = _target(f"{path}{label}.top20_share", declared, realized, 0.005, x.size, "share")
                t["miss"] = bool(abs(realized - declared) > 0.02)
                out.append(t)
    return out


def _measured_targets(spec: WorldSpec, partners: pd.DataFrame) -> list[dict]:
    """History inputs drawn from a distribution, against the features that measure them."""
    from .histories import KINDS
    out = []
    for h in spec.activity.histories if spec.activity else ():
        for key, agg in KINDS[h.kind].measures.items():
            col = h.inputs[key]
            feature = next((f.name for f in spec.activity.features if f.history == h.name
                            and f.aggregate == agg and f.name in partners), None)
            if col.kind != "sample" or feature is None:
                continue
            for label, mask, params, _ in _groups(col, partners):
                ref = SAMPLERS[col.sampler].draw(stream(spec.seed, "reference", h.name, key, label),
                                                 REFERENCE_ROWS, **params)
                x = partners.loc[mask, feature].to_numpy(dtype=float)
                t = _target(f"{h.path}.{key}{label}.mean", ref.mean(), x.mean() if x.size else 0,
                            x.std() / np.sqrt(max(x.size, 1)), x.size, "measured mean")
                t["feature"] = feature
                t["miss"] = bool(abs(t["realized"] - t["declared"]) > 4 * x.std() / np.sqrt(max(x.size, 1))
                                 + 0.1 * ref.std()) if x.size else True
                out.append(t)
    return out


def _bins_targets(spec: WorldSpec, partners: pd.DataFrame) -> list[dict]:
    """Shares of `bins` columns (tiers) implied by the declared distributions."""
    steps = pre_stage(build_plan(spec))
    env: dict[str, object] = {}
    for step in steps:
        col = step.column
        env[col.name] = columns.produce(col, env, REFERENCE_ROWS, stream(spec.seed, "reference", col.name),
                                        spec.as_of)
    out = []
    for col in spec.columns:
        if col.kind == "bins" and col.name in env and col.name in partners.columns:
            ref = pd.Series(np.asarray(env[col.name], dtype=object)).value_counts(normalize=True)
            labels = col.domain.categories
            out += _share_targets(f"{col.path}.share", labels, [ref.get(k, 0.0) for k in labels], partners[col.name])
    return out


def _intervention_targets(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> list[dict]:
    iv = spec.interventions
    if iv is None or iv.table not in tables:
        return []
    table, partners = tables[iv.table], tables["partners"]
    out = _share_targets("interventions.mix", iv.types, iv.shares, table["intervention_type"])
    reads = iv.reads & set(partners.columns)
    env = {c: (partners[c].array if isinstance(partners[c].dtype, pd.CategoricalDtype) else partners[c].to_numpy())
           for c in reads}
    row_of = {}
    n = len(partners)
    for kind in iv.types:
        rows = iv.effects[kind]
        if any(r.expr is not None and not r.expr.names <= reads for r in rows):
            continue                          # reads a helper column that is not in the table
        row_of[kind] = interventions.matched_row(rows, env, n)
    pidx = pc.index_in(pa.array(table["partner_id"]), value_set=pa.array(partners[spec.id.column]))
    pidx = pidx.to_numpy(zero_copy_only=False)
    loc, scale = iv.noise
    for kind, rows_idx in row_of.items():
        of_kind = np.asarray(table["intervention_type"] == kind)
        which = rows_idx[pidx[of_kind]]
        signal = table.loc[of_kind, "uplift_signal"].to_numpy()
        for i, row in enumerate(iv.effects[kind]):
            x = signal[which == i]
            out.append(_target(f"{row.path}.effect", row.effect + loc, x.mean() if x.size else 0,
                               scale / np.sqrt(max(x.size, 1)), x.size, "mean"))
    return out


def _network_targets(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> list[dict]:
    net = spec.network
    edges, partners = tables[net.table], tables["partners"]
    masters = partners.loc[partners[net.masters], spec.id.column]
    fan = edges["master_affiliate_id"].value_counts().reindex(masters, fill_value=0)
    full = fan[fan >= net.fanout[0]]
    lo, hi = net.fanout
    sd = np.sqrt(((hi - lo + 1) ** 2 - 1) / 12)
    t = _target("network.fanout.mean", (lo + hi) / 2, full.mean() if len(full) else 0,
                sd / np.sqrt(max(len(full), 1)), len(full), "mean")
    t["note"] = (f"masters with a full block; {int((fan == 0).sum())} of {len(fan)} masters got no subs "
                 f"after the pool ran out")
    return [t]


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


def build(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> dict:
    """The run's statistics: declared targets beside realized values, column summaries."""
    partners = tables["partners"]
    ch = spec.churn
    rate = partners[ch.label].mean()
    targets = [_target("churn.target_rate", ch.target_rate, rate,
                       np.sqrt(ch.target_rate * (1 - ch.target_rate) / len(partners)), len(partners), "rate")]
    for col in spec.columns:
        if col.kind in ("categorical", "sample") and col.keep:
            targets += _column_targets(spec, col, partners)
    targets += _bins_targets(spec, partners)
    targets += _measured_targets(spec, partners)
    targets += _intervention_targets(spec, tables)
    targets += _network_targets(spec, tables)
    scenario_shares = partners[spec.scenarios.column].value_counts(normalize=True)
    return {
        "seed": spec.seed,
        "n_partners": spec.n,
        "targets": targets,
        "misses": sum(t["miss"] for t in targets),
        "realized": {"churn_rate": round(float(rate), 6),
                     "scenario_shares": {str(k): round(float(v), 6) for k, v in scenario_shares.items()}},
        "columns": {name: {c: _summary(frame[c]) for c in frame.columns if c != spec.id.column
                           and not c.endswith("_id")}
                    for name, frame in tables.items()},
    }
