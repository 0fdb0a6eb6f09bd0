"""The exact truth of the outcome process: closed forms, never samples.

A partner's churn model gives its probability ``p`` of leaving in the label window with
no intervention effect; the window is cut into ``episodes`` equal episodes, so its
per-episode hazard is ``q = 1 - (1 - p) ** (1 / episodes)``. A decision of type t in an
episode realizes an effect ``e = clip(mu_t + noise, lo, hi)`` (noise ~ Normal(loc, scale),
``mu_t`` the declared effect) and the partner churns in that episode with probability
``clip(q + e, 0, 1)`` (the seed's absolute effect) or, when effects are relative,
``clip(q (1 + e), 0, 1)`` (a share of the hazard). :func:`outcome_probability` integrates
the noise and both clips out exactly: P(Churned | do(t)) = E[clip(q + clip(mu + eps, lo,
hi), 0, 1)], or E[clip(q (1 + clip(mu + eps, lo, hi)), 0, 1)].
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def episode_hazard(p: np.ndarray, episodes: int) -> np.ndarray:
    """Per-episode churn probability q with 1 - (1 - q) ** episodes = p."""
    with np.errstate(divide="ignore"):                 # p = 1: a certain churn, q = 1
        return -np.expm1(np.log1p(-np.asarray(p, dtype=float)) / episodes)


def hazard_column(probability: str) -> str:
    """The helper (partners x periods) the churn process writes beside its probability
    column: each partner's hazard at every period's start (the decisions' truth reads it)."""
    return f"{probability}:hazard"


def _excess(mu: np.ndarray, sigma: float, c: np.ndarray) -> np.ndarray:
    """E[(X - c)+] for X ~ Normal(mu, sigma), sigma > 0."""
    z = (mu - c) / sigma
    return (mu - c) * ndtr(z) + sigma * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def clipped_mean(mu: np.ndarray, sigma: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """E[clip(mu + eps, lo, hi)] with eps ~ Normal(0, sigma), for lo < hi, exactly."""
    if sigma <= 0:
        return np.clip(mu, lo, hi)
    return lo + _excess(mu, sigma, lo) - _excess(mu, sigma, hi)


def churn_given(q: np.ndarray, e: np.ndarray, relative: bool) -> np.ndarray:
    """The probability of churning in an episode at hazard ``q`` with realized effect ``e``:
    clip(q (1 + e), 0, 1) when effects are relative, else clip(q + e, 0, 1)."""
    return np.clip(q * (1 + e) if relative else q + e, 0, 1)


def trigger(u: np.ndarray, e: np.ndarray, relative: bool) -> np.ndarray:
    """The hazard above which uniform ``u`` churns under effect ``e`` (u < churn_given(q, e)):
    u / (1 + e) when effects are relative (inf where 1 + e <= 0: no hazard churns), else u - e."""
    if not relative:
        return u - e
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(1 + e > 0, u / (1 + e), np.inf)


def outcome_probability(q: np.ndarray, mu: np.ndarray, sigma: float, clip: tuple[float, float],
                        relative: bool = False) -> np.ndarray:
    """E[clip(q + clip(mu + eps, lo, hi), 0, 1)] with eps ~ Normal(0, sigma), exactly; with
    ``relative``, E[clip(q (1 + clip(mu + eps, lo, hi)), 0, 1)] (lo >= -1).

    clip(q + clip(x, lo, hi), 0, 1) = q + clip(x, max(lo, -q), min(hi, 1 - q)) when those
    bounds are ordered (a clipped normal has a closed-form mean); otherwise the outcome is
    certain: 1 when even the lowest effect reaches 1, 0 when even the highest stays at 0.
    Relative: q (1 + e) >= 0 for e >= lo >= -1, and clip(q (1 + clip(x, lo, hi)), 0, 1) =
    q (1 + clip(x, lo, min(hi, 1/q - 1))), certain (1) when even q (1 + lo) reaches 1.
    """
    if relative:
        return _relative_outcome(np.asarray(q, dtype=float), np.asarray(mu, dtype=float), sigma, clip)
    q, mu = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(mu, dtype=float))
    lo = np.maximum(clip[0], -q)
    hi = np.minimum(clip[1], 1 - q)
    with np.errstate(invalid="ignore"):
        out = q + np.where(lo < hi, clipped_mean(mu, sigma, lo, hi), 0.0)
    out = np.where(lo < hi, out, np.where(q + clip[0] >= 1, 1.0, np.where(q + clip[1] <= 0, 0.0, q)))
    return np.clip(out, 0.0, 1.0)


def _relative_outcome(q: np.ndarray, mu: np.ndarray, sigma: float, clip: tuple[float, float]) -> np.ndarray:
    """E[clip(q (1 + clip(mu + eps, lo, hi)), 0, 1)] for lo >= -1 (outcome_probability)."""
    q, mu = np.broadcast_arrays(q, mu)
    with np.errstate(divide="ignore"):
        hi = np.minimum(clip[1], np.where(q > 0, 1 / q - 1, np.inf))
    lo = np.full(q.shape, float(clip[0]))
    free = lo < hi
    mean = clipped_mean(mu, sigma, lo, np.where(free, hi, lo + 1))     # (a placeholder where certain)
    return np.clip(np.where(free, q * (1 + mean), 1.0), 0.0, 1.0)
