"""Grade a model against the world's exact truth: churn, uplift and intervention policies.

Pure functions over arrays; ``simulator.evaluate`` reads the run and the predictions.

The truth of one decision (the partner's next outcome window) is ``uplift_truth``: the
per-episode churn probability under the control, ``P_none``, and each type's exact effect,
so ``P_t = P_none + effect_t`` is P(Churned | do(t)) with the noise and clips integrated
out. A policy's expected churners are the sum of ``P_t`` over its assignment (a mixed
policy, like the logging one, the sum of its shares times ``P_t``), never a sample; its
expected commission retained weights each partner's ``1 - P`` by its value (the world's
value column, e.g. the monthly commission).

A figure that is not defined for the given inputs (an AUC with one class, a correlation with
a constant score, a Qini coefficient when no ranking beats random) is ``None``, never NaN,
so the evaluation is strict JSON.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from .review.learnability import auc


def defined(value: float) -> float | None:
    """``value``, or None where it is not a finite number (undefined for these inputs)."""
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class Truth:
    """The cohort's exact outcome probabilities under each type, and what is at stake."""

    types: tuple[str, ...]
    control: str
    p: np.ndarray                  # (n, types): P(Churned | do(type)) in the next window
    commission: np.ndarray | None  # (n,): each partner's value (the world's value column), if it has one
    costs: Mapping[str, float]     # cost of one decision of each type

    @property
    def cost(self) -> np.ndarray:
        """(types,): the cost of one decision of each type (0 where none is declared)."""
        return np.array([self.costs.get(t, 0.0) for t in self.types])


def policy_value(truth: Truth, shares: np.ndarray, name: str) -> dict:
    """Expected churners, churn rate, commission retained and cost of a (mixed) policy:
    ``shares`` (n, types) each partner's probability of each type."""
    n = len(truth.p)
    churn = (shares * truth.p).sum(axis=1)
    cost = float((shares * truth.cost).sum())
    return {"name": name, "expected_churners": float(churn.sum()),
            "expected_churn_rate": float(churn.sum() / n) if n else 0.0,
            "expected_commission_retained": None if truth.commission is None
            else float(((1 - churn) * truth.commission).sum()), "cost": cost}


def one_hot(assignment: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((assignment.size, k))
    out[np.arange(assignment.size), assignment] = 1.0
    return out


def oracle(truth: Truth, budget: float | None = None) -> np.ndarray:
    """Each partner's best type (the lowest churn probability; among equals the cheapest).

    Under a budget, a multiple-choice knapsack solved the greedy way: each partner's
    upgrades from the control along the upper convex hull of its (cost, churn prevented)
    points, all partners' upgrades taken in order of churn prevented per unit of cost
    until the next one does not fit (optimal up to that one upgrade: the LP bound)."""
    cost = truth.cost
    n, k = truth.p.shape
    # lexicographic: lowest probability, then lowest cost (a tie-break far below 1e-12)
    best = np.argmin(truth.p + 1e-13 * cost / max(cost.max(), 1.0), axis=1)
    if budget is None:
        return best
    control = truth.types.index(truth.control)
    gain = truth.p[:, [control]] - truth.p                     # (n, k) churn prevented by each type
    extra = cost - cost[control]                                # (k,) what each type costs beyond the control
    steps_from, steps_to, steps_eff, steps_cost = [], [], [], []
    current = np.full(n, control)
    rows = np.arange(n)
    for _ in range(k - 1):                                      # at most k - 1 upgrades per partner
        dg = gain - gain[rows, current][:, None]
        dc = extra[None, :] - extra[current][:, None]
        ok = (dg > 1e-15) & (dc >= 0)
        eff = np.where(ok, np.where(dc > 0, dg / np.where(dc > 0, dc, 1), np.inf), -np.inf)
        nxt = np.argmax(eff, axis=1)
        has = np.isfinite(eff[rows, nxt]) | (eff[rows, nxt] == np.inf)
        if not has.any():
            break
        steps_from.append(np.where(has, current, -1))
        steps_to.append(np.where(has, nxt, -1))
        steps_eff.append(np.where(has, eff[rows, nxt], -np.inf))
        steps_cost.append(np.where(has, dc[rows, nxt], 0.0))
        current = np.where(has, nxt, current)
    if not steps_to:
        return np.full(n, control)
    to, eff, dcost = np.stack(steps_to), np.stack(steps_eff), np.stack(steps_cost)   # (steps, n)
    partner = np.broadcast_to(rows, to.shape)
    order = np.argsort(-eff.ravel(), kind="stable")
    valid = to.ravel()[order] >= 0
    spent = np.cumsum(np.where(valid, dcost.ravel()[order], 0.0))
    fits = valid & (spent <= budget + 1e-9)
    stop = np.flatnonzero(valid & ~fits)
    if stop.size:
        fits[stop[0]:] = False                                  # the first upgrade that does not fit ends it
    out = np.full(n, control)
    taken = order[fits]
    # a partner's upgrades come in order (its hull's efficiencies fall): its last one wins
    step_index = taken // n
    sort = np.argsort(step_index, kind="stable")
    out[partner.ravel()[taken][sort]] = to.ravel()[taken][sort]
    return out


def within_budget(truth: Truth, assignment: np.ndarray, priority: np.ndarray, budget: float) -> np.ndarray:
    """A submitted assignment cut to a budget: the control for the partners whose turn
    comes after the money runs out (highest ``priority`` first)."""
    control = truth.types.index(truth.control)
    order = np.argsort(-priority, kind="stable")
    spent = np.cumsum((truth.cost[assignment] - truth.cost[control])[order])
    keep = np.zeros(len(order), dtype=bool)
    keep[order] = spent <= budget
    return np.where(keep, assignment, control)


def churn_model(predicted: np.ndarray, label: np.ndarray, true_p: np.ndarray) -> dict:
    """AUC and Brier score against the realized label and against the true probability
    (the oracle's AUC beside it), and a calibration table by decile of the prediction."""
    deciles = np.minimum((np.argsort(np.argsort(predicted, kind="stable"), kind="stable") * 10) // len(predicted), 9)
    table = [{"decile": int(d + 1), "n": int((deciles == d).sum()),
              "mean_predicted": float(predicted[deciles == d].mean()),
              "mean_true_probability": float(true_p[deciles == d].mean()),
              "churn_rate": float(label[deciles == d].mean())} for d in range(10) if (deciles == d).any()]
    return {"n": int(len(predicted)), "auc": defined(auc(label, predicted)), "oracle_auc": defined(auc(label, true_p)),
            "brier": float(np.mean((predicted - label) ** 2)),
            "oracle_brier": float(np.mean((true_p - label) ** 2)),
            "brier_vs_true_probability": float(np.mean((predicted - true_p) ** 2)),
            "calibration": table}


def qini(score: np.ndarray, benefit: np.ndarray) -> tuple[float | None, np.ndarray]:
    """The Qini coefficient of a ranking against the true benefit: the area between its
    cumulative benefit curve (best-scored first) and the random ranking's straight line,
    as a share of the perfect ranking's area (1: perfect, 0: random; None when the perfect
    ranking does no better than random). Also the curve."""
    n = len(score)
    cum = np.concatenate([[0.0], np.cumsum(benefit[np.argsort(-score, kind="stable")])])
    best = np.concatenate([[0.0], np.cumsum(np.sort(benefit)[::-1])])
    line = np.arange(n + 1) / max(n, 1) * benefit.sum()
    area, perfect = float((cum - line).sum()), float((best - line).sum())
    return (area / perfect if perfect > 0 else None), cum


def uplift_model(score: np.ndarray, benefit: np.ndarray, ks: Sequence[float] = (0.1, 0.2, 0.3)) -> dict:
    """Qini, Spearman correlation with the true benefit and the mean true benefit of the
    top k of the ranking (churn prevented per partner treated)."""
    coefficient, curve = qini(score, benefit)
    order = np.argsort(-score, kind="stable")
    at = {f"uplift_at_{int(k * 100)}pct": float(benefit[order[:max(int(round(k * len(score))), 1)]].mean())
          for k in ks}
    points = np.linspace(0, len(score), 11).astype(int)
    constant = np.ptp(score) == 0 or np.ptp(benefit) == 0     # Spearman's rho is undefined: no ranking
    return {"n": int(len(score)), "qini": coefficient,
            "spearman": None if constant else defined(float(spearmanr(score, benefit).statistic)),
            **at, "mean_true_benefit": float(benefit.mean()),
            "curve": [{"treated": int(i), "churn_prevented": float(curve[i])} for i in points]}


def intervals(score: np.ndarray, benefit: np.ndarray, rng: np.random.Generator, resamples: int = 200,
              ks: Sequence[float] = (0.1, 0.2, 0.3)) -> dict:
    """Bootstrap 95% intervals (percentile, ``resamples`` resamples of the partners with
    replacement) of the Qini coefficient and the uplift at each k: how much of a figure is
    which partners happened to be in the world (the benefits themselves are exact)."""
    n = len(score)
    found: dict[str, list[float]] = {"qini": [], **{f"uplift_at_{int(k * 100)}pct": [] for k in ks}}
    if n < 2:
        return {name: None for name in found}
    for _ in range(resamples):                         # a loop over resamples, each whole-array
        pick = rng.integers(0, n, n)
        s, b = score[pick], benefit[pick]
        coefficient, _ = qini(s, b)
        found["qini"].append(np.nan if coefficient is None else coefficient)
        order = np.argsort(-s, kind="stable")
        for k in ks:
            found[f"uplift_at_{int(k * 100)}pct"].append(float(b[order[:max(int(round(k * n)), 1)]].mean()))
    out = {}
    for name, values in found.items():
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        out[name] = [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else None
    return out

