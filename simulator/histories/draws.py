"""Draws whose use of a random stream does not depend on their parameters.

numpy's Poisson, binomial and multinomial samplers consume a varying amount of a stream
depending on their parameters, so within one block a change to one partner's inputs
(say its churn label, through its login trend) would shift every later partner's draws.
These helpers turn a fixed-shape array of uniforms into the draws instead (inverse CDF,
bucketing), so each partner's values depend only on its own inputs and its own slice
of the stream: a config change moves only the partners it touches.
"""
from __future__ import annotations

import numpy as np

MAX_POISSON_STEPS = 200


def allocate(counts: np.ndarray, weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Multinomial allocation: row i puts ``counts[i]`` items into ``weights.shape[1]`` bins
    with probabilities proportional to ``weights[i]`` (uniform where they are all zero),
    using ``u[i, :counts[i]]`` (u has at least ``counts.max()`` columns)."""
    m, k = weights.shape
    total = weights.sum(axis=1, keepdims=True)
    p = np.where(total > 0, weights / np.where(total > 0, total, 1), 1.0 / k)
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0 + 1e-9                                # every uniform lands in a bin
    j = u.shape[1]
    if m == 0 or j == 0:
        return np.zeros((m, k), dtype=np.int64)
    # each used uniform's bin: how many of its row's cdf entries are at or below it (the
    # last, above every uniform, never is), by a branchless binary search within the row
    # (log2 k steps over the used uniforms only)
    rows, cols = np.nonzero(np.arange(j)[None, :] < counts[:, None])
    x, flat, base = u[rows, cols], cdf.ravel(), rows * k
    pos = np.zeros(x.size, dtype=np.int64)
    step = 1 << (k - 1).bit_length() - 1 if k > 1 else 0
    while step:
        cand = pos + step
        pos += step * ((cand <= k - 1) & (flat[base + np.minimum(cand, k - 1) - 1] <= x))
        step >>= 1
    return np.bincount(base + pos, minlength=m * k).reshape(m, k)


def poisson(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(lam) by inverse CDF, one uniform per value (zero where lam is 0)."""
    lam = np.asarray(lam, dtype=float)
    out = np.zeros(lam.shape, dtype=np.int64)
    idx = np.flatnonzero(lam > 0)
    lam_a, u_a = lam.ravel()[idx], u.ravel()[idx]
    p = np.exp(-lam_a)
    cdf = p.copy()
    k = np.zeros(idx.size, dtype=np.int64)
    active = np.arange(idx.size)
    for i in range(1, MAX_POISSON_STEPS):       # only the values still above their CDF go on
        more = u_a[active] > cdf[active]
        active = active[more]
        if not active.size:
            break
        k[active] += 1
        p[active] *= lam_a[active] / i
        cdf[active] += p[active]
    out.ravel()[idx] = k
    return out


def stochastic_round(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """floor(x) plus 1 with probability frac(x): an integer with mean x."""
    return (np.floor(x) + (u < x - np.floor(x))).astype(np.int64)


def split(total: np.ndarray, weights: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Split each row's integer ``total`` over its columns in proportion to ``weights``
    (systematic sampling from one uniform ``v`` per row): exact row sums, nothing where
    the weight is 0, and each column's expectation ``total * share``."""
    c = np.cumsum(np.asarray(weights, dtype=float), axis=1)
    last = c[:, -1:]
    # c / last is exactly 1.0 from the last positive weight on, so nothing spills past it
    share = np.where(last > 0, c / np.where(last > 0, last, 1), np.arange(1, c.shape[1] + 1) / c.shape[1])
    v = np.asarray(v, dtype=float)[:, None]
    cum = np.floor(share * np.asarray(total, dtype=float)[:, None] + v)
    return np.diff(cum, axis=1, prepend=np.floor(v)).astype(np.int64)
