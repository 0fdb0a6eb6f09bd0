"""Off-policy estimates of a policy's value from the logged decisions, graded against the truth.

The logged data are each partner's first decision after the feature date: the type the
logging policy gave it (``a``), that type's probability under the logging policy
(``propensity``, written in ``interventions``) and the outcome (``y``: 1 Churned). A target
policy ``pi`` (partners x types, each row summing to 1; one-hot for a deterministic one)
is valued as its expected churners per partner, estimated four standard ways:

- IPW, inverse propensity weighting: mean(w * y), w = pi[a] / propensity;
- SNIPW, self-normalized: sum(w * y) / sum(w);
- DM, the direct method: mean(sum_t pi_t * m_t(x)), m_t an outcome model of churn under t;
- DR, doubly robust: mean(sum_t pi_t * m_t(x) + w * (y - m_a(x))).

Each comes with its standard error (the sample sd of its per-row terms over sqrt(n); the
delta method for SNIPW; DM's treats the fitted model as fixed). The outcome model is a
logistic regression per type on the standardized features, fitted with scipy (an L2 of
1e-3 per row), cross-fitted over two folds so that no row is scored by a model that saw
it. Open Bandit Pipeline, the well-kept library of these estimators, pins numpy 1.23 and
does not install with this stack; the formulas are its ``InverseProbabilityWeighting``,
``SelfNormalizedInverseProbabilityWeighting``, ``DirectMethod`` and ``DoublyRobust`` with
the reward being churn, and tests check them against hand-computed cases.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

ESTIMATORS = ("ipw", "snipw", "dm", "dr")


@dataclass(frozen=True)
class Logged:
    """The logged decisions: outcome (0/1), the type taken (index), its logging propensity,
    and the features each decision was taken on (rows x features)."""

    y: np.ndarray
    a: np.ndarray
    propensity: np.ndarray
    x: np.ndarray


def _mean_se(terms: np.ndarray) -> tuple[float, float]:
    n = terms.size
    return float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def ipw(log: Logged, pi: np.ndarray) -> tuple[float, float]:
    """Inverse propensity weighting: (estimate, standard error)."""
    w = pi[np.arange(log.a.size), log.a] / log.propensity
    return _mean_se(w * log.y)


def snipw(log: Logged, pi: np.ndarray) -> tuple[float, float]:
    """Self-normalized IPW: (estimate, delta-method standard error)."""
    w = pi[np.arange(log.a.size), log.a] / log.propensity
    total = w.sum()
    if total <= 0:
        return float("nan"), float("nan")
    value = float((w * log.y).sum() / total)
    return value, float(np.sqrt(((w * (log.y - value)) ** 2).sum()) / total)


def dm(model: np.ndarray, pi: np.ndarray) -> tuple[float, float]:
    """The direct method over ``model`` (rows x types: each row's predicted churn under each type)."""
    return _mean_se((pi * model).sum(axis=1))


def dr(log: Logged, pi: np.ndarray, model: np.ndarray) -> tuple[float, float]:
    """Doubly robust: the direct method corrected by the weighted residual of the type taken."""
    rows = np.arange(log.a.size)
    w = pi[rows, log.a] / log.propensity
    return _mean_se((pi * model).sum(axis=1) + w * (log.y - model[rows, log.a]))


def _logistic(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Coefficients (intercept first) of an L2-penalized logistic regression of y on x."""
    z = np.column_stack([np.ones(len(x)), x])

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = z @ beta
        p = expit(eta)
        value = np.logaddexp(0, eta).sum() - y @ eta + 0.5 * l2 * len(y) * (beta[1:] @ beta[1:])
        grad = z.T @ (p - y)
        grad[1:] += l2 * len(y) * beta[1:]
        return value, grad
    from scipy.optimize import minimize        # (here: every run's review imports this module, few fit)

    return minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x


def outcome_model(log: Logged, types: int, folds: int = 2, l2: float = 1e-3) -> np.ndarray:
    """Each row's predicted churn under each type (rows x types), cross-fitted: a row is
    scored by the models of the other folds (fold = row position modulo ``folds``)."""
    x = log.x.astype(float)
    scale = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    fold = np.arange(len(x)) % folds
    out = np.empty((len(x), types))
    overall = log.y.mean() if log.y.size else 0.0
    for f in range(folds):
        train, score = fold != f, fold == f
        for t in range(types):
            sel = train & (log.a == t)
            if sel.sum() < 2 or log.y[sel].min() == log.y[sel].max():   # nothing to fit: the type's rate
                out[score, t] = log.y[sel].mean() if sel.any() else overall
                continue
            beta = _logistic(x[sel], log.y[sel].astype(float), l2)
            out[score, t] = expit(beta[0] + x[score] @ beta[1:])
    return out


def estimates(log: Logged, pi: np.ndarray, truth: float, per: float = 1000.0) -> dict[str, dict]:
    """Every estimator's {estimate, se, truth, error} of the policy's expected churners per
    ``per`` partners, beside the exact value ``truth`` (per partner)."""
    model = outcome_model(log, pi.shape[1])
    found = {"ipw": ipw(log, pi), "snipw": snipw(log, pi), "dm": dm(model, pi), "dr": dr(log, pi, model)}
    return {name: {"estimate": value * per, "se": se * per, "truth": truth * per, "error": (value - truth) * per}
            for name, (value, se) in found.items()}


def _clustered_se(terms: np.ndarray, cluster: np.ndarray | None) -> float:
    """The standard error of mean(terms) (influence terms centred at 0), rows of one
    ``cluster`` (a partner's decisions over the periods) summed before squaring."""
    n = terms.size
    if cluster is not None:
        terms = np.bincount(cluster, weights=terms)
    return float(np.sqrt((terms ** 2).sum()) / n) if n > 1 else float("nan")


def arm_contrast(y: np.ndarray, a: np.ndarray, propensity: np.ndarray, t: int, c: int,
                 cluster: np.ndarray | None = None) -> dict[str, float]:
    """Type ``t`` against the control ``c`` over the logged decisions: the naive difference of
    the two arms' churn rates, and the self-normalized IPW difference (each arm's SNIPW value:
    Hajek), each with its standard error by the delta method, clustered by ``cluster`` (rows
    of one partner are not independent). Under a logging policy that targets, the naive
    difference mixes the effect with who was chosen; the weighted one does not."""
    at, ac = a == t, a == c
    n = y.size
    if not at.any() or not ac.any():
        return {"naive": float("nan"), "naive_se": float("nan"), "ipw": float("nan"), "ipw_se": float("nan")}
    m_t, m_c = float(y[at].mean()), float(y[ac].mean())
    naive = n * (at * (y - m_t) / at.sum() - ac * (y - m_c) / ac.sum())
    w_t, w_c = at / propensity, ac / propensity
    h_t, h_c = float((w_t * y).sum() / w_t.sum()), float((w_c * y).sum() / w_c.sum())
    weighted = w_t * (y - h_t) / w_t.mean() - w_c * (y - h_c) / w_c.mean()
    return {"naive": m_t - m_c, "naive_se": _clustered_se(naive, cluster),
            "ipw": h_t - h_c, "ipw_se": _clustered_se(weighted, cluster)}
