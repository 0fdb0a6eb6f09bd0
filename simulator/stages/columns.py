"""Produce one declared column: sample, categorical, derive, bins, lookup or date."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..distributions import SAMPLERS, draw_categorical
from ..expr import evaluate
from ..dates import days_before
from ..spec.model import ColumnSpec
from ..spec.shocks import applied

def codes_of(values: object, keys: tuple) -> np.ndarray:
    """Positions of each row's value within ``keys`` (labels or True/False)."""
    if isinstance(values, pd.Categorical):
        return pd.Categorical(values, categories=list(keys)).codes.astype(np.intp)
    arr = np.asarray(values)
    if arr.dtype == bool:                      # keys are (True, False)
        return np.where(arr, keys.index(True), keys.index(False)).astype(np.intp)
    return pd.Categorical(arr, categories=list(keys)).codes.astype(np.intp)


def params_at(col: ColumnSpec, env: Mapping[str, object], n: int, day: np.datetime64 | None = None) -> dict:
    """The sampler's parameters per row: its `by` group's (as of the state ``env``), each
    multiplied by the shocks acting on a period starting ``day`` where their condition holds
    (None: as declared)."""
    params = col.params
    if col.by:
        rows = codes_of(env[col.by], col.by_keys)
        params = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    if day is not None and col.shocks:
        params = dict(params)
        for name in dict.fromkeys(e.target.rsplit(".", 1)[1] for _, e in col.shocks):
            factor = applied([(s, e) for s, e in col.shocks if e.target.endswith("." + name)], day, env, n)
            if factor is not None:
                params[name] = params[name] * factor
    return params


def produce(col: ColumnSpec, env: Mapping[str, object], n: int, rng: np.random.Generator,
            as_of: np.datetime64, day: np.datetime64 | None = None) -> object:
    """The column's values for ``n`` rows, given the columns it reads in ``env`` (a sampled
    one's parameters as shocked on ``day``: :func:`params_at`)."""
    if col.kind == "categorical":
        rows = codes_of(env[col.by], col.by_keys) if col.by else None
        codes = draw_categorical(rng, col.weights, rows, n)
        return pd.Categorical.from_codes(codes, categories=list(col.domain.categories))
    if col.kind == "bins":
        edges = np.array([v for _, v in col.edges])
        codes = np.clip(np.searchsorted(edges, np.asarray(env[col.source]), side="right") - 1,
                        0, None)               # below the lowest edge: the lowest label
        return pd.Categorical.from_codes(codes, categories=[k for k, _ in col.edges])
    if col.kind == "lookup":
        table = np.array([v for _, v in col.edges])
        return table[codes_of(env[col.source], tuple(k for k, _ in col.edges))]
    if col.kind == "date":
        return days_before(as_of, evaluate(col.expr, env, n))
    if col.kind == "derive":
        values = evaluate(col.expr, env, n)
    else:
        values = SAMPLERS[col.sampler].draw(rng, n, **params_at(col, env, n, day))
    return finish(col, values)


def finish(col: ColumnSpec, values: object) -> np.ndarray:
    """Apply clip/cap, rounding and the declared dtype."""
    arr = np.asarray(values)
    lo, hi = col.clip
    if lo is not None or hi is not None:
        arr = np.clip(arr, lo, hi)
    if col.round == "floor":
        arr = np.floor(arr)
    elif col.round is not None:
        arr = np.round(arr, col.round) + 0.0          # (+0: a tiny negative rounds to -0.0, not 0.0)
    if col.cast:
        arr = arr.astype({"int": np.int64, "float": np.float64, "bool": bool}[col.cast])
    return arr


def range_checks(col: ColumnSpec) -> list:
    """pandera checks a column's declaration implies: its clip bounds, [0, 1] for a beta."""
    import pandera.pandas as pa

    checks = []
    if col.clip != (None, None):
        lo, hi = col.clip
        checks.append(pa.Check.in_range(-np.inf if lo is None else lo, np.inf if hi is None else hi))
    if col.sampler == "beta":
        checks.append(pa.Check.in_range(0, 1))
    return checks


def group_params(col: ColumnSpec):
    """(label, parameters, weights) of each `by` value of a declared column, in the order of
    ``by_keys`` (its codes), or of its one group without `by`."""
    if col.by is None:
        yield "", col.params, col.weights
        return
    for i, key in enumerate(col.by_keys):
        params = {k: (v[i] if isinstance(v, np.ndarray) else v) for k, v in col.params.items()}
        yield f"[{col.by}={key}]", params, (col.weights[i] if col.weights is not None else None)


def by_groups(col: ColumnSpec, partners: pd.DataFrame):
    """(label, row mask, parameters, weights) of each `by` value of a declared column, or
    one group of every row: what each group's declared targets are measured on."""
    if col.by is not None and col.by not in partners:   # a latent helper column: its groups are not observable
        return
    for i, (label, params, weights) in enumerate(group_params(col)):
        mask = np.ones(len(partners), dtype=bool) if col.by is None else np.asarray(partners[col.by] == col.by_keys[i])
        yield label, mask, params, weights
