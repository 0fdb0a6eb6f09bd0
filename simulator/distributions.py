"""The sampler registry: name -> vectorized sampler with a declarative parameter table.

Every sampler draws a whole column at once from a numpy ``Generator``. Parameters may
be scalars or per-row arrays (that is how ``by:`` conditioning works), so no sampler
ever loops over rows. To add a sampler, add one entry to :data:`SAMPLERS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special

BETA_GRID = 1 << 14 | 1          # uniforms at which a beta's quantile is exact (then linear)

# parameter constraints: name -> (test, description)
CONSTRAINTS: dict[str, tuple[Callable[[float], bool], str]] = {
    "real": (lambda v: bool(np.isfinite(v)), "a finite number"),
    "positive": (lambda v: bool(np.isfinite(v) and v > 0), "a number > 0"),
    "nonneg": (lambda v: bool(np.isfinite(v) and v >= 0), "a number >= 0"),
    "prob": (lambda v: bool(0 <= v <= 1), "a probability in [0, 1]"),
    "int": (lambda v: bool(np.isfinite(v) and float(v).is_integer()), "a whole number"),
}


@dataclass(frozen=True)
class Sampler:
    """A named sampler: its parameters' constraints, its output kind, and the draw."""

    name: str
    params: dict[str, str]                    # parameter -> constraint name
    kind: str                                 # float | int | bool
    draw: Callable[..., np.ndarray]           # draw(rng, n, **params) -> array of n
    ordered: tuple[str, str] | None = None    # (low, high) that must satisfy low < high
    cdf: Callable[..., np.ndarray] | None = None   # cdf(x, **params) = P(X <= x)
    ppf: Callable[..., np.ndarray] | None = None   # ppf(u, **params): the smallest x with cdf(x) >= u
    discrete: bool = False                    # integer support: P(X < x) = cdf(ceil(x) - 1)


def _integers(rng, n, low, high):
    return rng.integers(np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64) + 1, n)


def _positive_log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.where(x > 0, x, np.nan))


def _by_value(u: np.ndarray, params: tuple, quantiles) -> np.ndarray:
    """``quantiles(u, *values)`` for each distinct combination of the parameters' values
    (scalars, or per row: a `by` column gives a handful), so a table is built once each."""
    arrays = np.broadcast_arrays(*(np.asarray(p, dtype=float) for p in params))
    if arrays[0].ndim == 0:
        return quantiles(u, *(float(a) for a in arrays))
    group = np.zeros(u.shape, dtype=np.int64)
    for a in arrays:                          # one code per combination (hashed: 3x np.unique's sort)
        which, values = pd.factorize(a.ravel(), sort=True, use_na_sentinel=False)   # (NaN a value, last)
        group = group * values.size + which.reshape(u.shape)
    out = np.empty(u.shape, dtype=float)
    for code in np.flatnonzero(np.bincount(group.ravel())):     # (the codes present, ascending)
        rows = group == code
        i = int(np.argmax(rows))
        out[rows] = quantiles(u[rows], *(float(a[i]) for a in arrays))
    return out


def _poisson_ppf(u, lam):
    """The smallest k with P(X <= k) >= u: one table of the CDF per distinct rate."""
    def table(u, lam):
        k = np.arange(int(lam + 12 * np.sqrt(lam) + 25))
        cdf = special.pdtr(k, lam)
        return np.minimum(np.searchsorted(cdf, u, side="left"), k[-1])
    return _by_value(u, (lam,), table).astype(np.int64)


Z_GRID = np.linspace(-8.3, 8.3, BETA_GRID)   # normal scores of the uniforms 1e-16 .. 1 - 1e-16


@lru_cache(maxsize=256)
def _beta_grid(a: float, b: float) -> np.ndarray:
    return special.betaincinv(a, b, special.ndtr(Z_GRID))


def _beta_ppf(u, a, b):
    """The beta quantile: exact at BETA_GRID normal scores per shape (a, b) and linear in
    the score between them (where the quantile is smooth even in the tails): within 1e-7
    of scipy's betaincinv for conf/'s shapes, far below the decimals a drawn score keeps,
    and 20x faster for a handful of shapes (one table each)."""
    z = special.ndtri(np.clip(u, 1e-16, 1 - 1e-16))
    return _by_value(z, (a, b), lambda z, a, b: np.interp(z, Z_GRID, _beta_grid(a, b)))


def _integers_cdf(x, low, high):
    return np.clip((np.floor(x) - low + 1) / (np.asarray(high) - low + 1), 0, 1)


def _integers_ppf(u, low, high):
    m = np.asarray(high) - low + 1           # the smallest k with cdf(k) = (k - low + 1) / m >= u
    return low + np.clip(np.ceil(u * m) - 1, 0, m - 1).astype(np.int64)


# cdf and ppf (the inverse CDF) let a partner's draw move through time on its quantile
# (simulator.stages.moving): the same uniform gives the same value
SAMPLERS: dict[str, Sampler] = {s.name: s for s in [
    Sampler("normal", {"loc": "real", "scale": "positive"}, "float",
            lambda rng, n, loc, scale: rng.normal(loc, scale, n),
            cdf=lambda x, loc, scale: special.ndtr((x - loc) / scale),
            ppf=lambda u, loc, scale: loc + scale * special.ndtri(u)),
    Sampler("lognormal", {"mean": "real", "sigma": "positive"}, "float",
            lambda rng, n, mean, sigma: rng.lognormal(mean, sigma, n),
            cdf=lambda x, mean, sigma: np.nan_to_num(special.ndtr((_positive_log(x) - mean) / sigma), nan=0.0),
            ppf=lambda u, mean, sigma: np.exp(mean + sigma * special.ndtri(u))),
    Sampler("exponential", {"scale": "positive"}, "float",
            lambda rng, n, scale: rng.exponential(scale, n),
            cdf=lambda x, scale: -np.expm1(-np.maximum(x, 0) / scale),
            ppf=lambda u, scale: -scale * np.log1p(-u)),
    # numpy's pareto is the Lomax (Pareto II) form: scale * Lomax(alpha), support [0, inf)
    Sampler("pareto", {"alpha": "positive", "scale": "positive"}, "float",
            lambda rng, n, alpha, scale: rng.pareto(alpha, n) * scale,
            cdf=lambda x, alpha, scale: -np.expm1(-alpha * np.log1p(np.maximum(x, 0) / scale)),
            ppf=lambda u, alpha, scale: scale * np.expm1(-np.log1p(-u) / alpha)),
    Sampler("uniform", {"low": "real", "high": "real"}, "float",
            lambda rng, n, low, high: rng.uniform(low, high, n), ordered=("low", "high"),
            cdf=lambda x, low, high: np.clip((x - low) / (np.asarray(high) - low), 0, 1),
            ppf=lambda u, low, high: low + u * (np.asarray(high) - low)),
    # inclusive of both bounds: integers(30, 365) can give 365
    Sampler("integers", {"low": "int", "high": "int"}, "int", _integers, ordered=("low", "high"),
            cdf=_integers_cdf, ppf=_integers_ppf, discrete=True),
    Sampler("poisson", {"lam": "nonneg"}, "int",
            lambda rng, n, lam: rng.poisson(lam, n),
            cdf=lambda x, lam: np.where(x < 0, 0.0, special.pdtr(np.floor(np.maximum(x, 0)), lam)),
            ppf=_poisson_ppf, discrete=True),
    # False / True as 0 / 1
    Sampler("bernoulli", {"p": "prob"}, "bool",
            lambda rng, n, p: rng.random(n) < p,
            cdf=lambda x, p: np.where(x < 0, 0.0, np.where(x < 1, 1 - np.asarray(p, dtype=float), 1.0)),
            ppf=lambda u, p: u > 1 - np.asarray(p, dtype=float), discrete=True),
    Sampler("beta", {"a": "positive", "b": "positive"}, "float",
            lambda rng, n, a, b: rng.beta(a, b, n),
            cdf=lambda x, a, b: special.betainc(a, b, np.clip(x, 0, 1)),
            ppf=_beta_ppf),
]}

CATEGORICAL = "categorical"   # weights over labels; handled by draw_categorical
KNOWN = sorted([*SAMPLERS, CATEGORICAL])


def categorical_codes(weights: np.ndarray, u: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Category codes by the inverse CDF of one uniform per row: ``weights`` (k,) for one
    distribution, or (g, k) with ``rows`` giving each row's group (0..g-1), or (n, k), one
    distribution per row (``rows`` None). The same uniform gives the same code."""
    cum = np.cumsum(weights, axis=-1)
    cum = cum / cum[..., -1:]                 # exact 1.0 at the end despite rounding
    if weights.ndim == 1:
        return np.searchsorted(cum, u, side="right").astype(np.int32)
    return (u[:, None] >= (cum if rows is None else cum[rows])).sum(axis=1).astype(np.int32)


def draw_categorical(rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray | None,
                     n: int) -> np.ndarray:
    """Category codes for ``n`` rows (:func:`categorical_codes` of ``n`` uniforms)."""
    return categorical_codes(weights, rng.random(n), rows)
