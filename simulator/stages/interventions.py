"""Interventions and their ground truth, from a declared treatment-effect table.

Per partner: the expected effect of every declared type (first matching row of its
table; the uplift ground truth). Per intervention: a type from the mix, the expected
effect plus normal noise, clipped (``uplift_signal``); the final churn probability
clip(base + effect, 0, 1) with base the churn model's probability; the outcome drawn
from it. Whole arrays throughout; loops run over types and table rows only.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..distributions import draw_categorical
from ..expr import evaluate
from ..spec.model import EffectRow, InterventionSpec

def matched_row(rows: tuple[EffectRow, ...], env: Mapping[str, object], n: int) -> np.ndarray:
    """Per partner, the index of the first effect row whose condition holds (-1: none)."""
    masks = [np.ones(n, dtype=bool) if r.expr is None
             else np.asarray(evaluate(r.expr, env, n), dtype=bool) for r in rows]
    return np.select(masks, np.arange(len(rows)), default=-1)


def expected_effects(spec: InterventionSpec, env: Mapping[str, object], n: int) -> np.ndarray:
    """(n, types) matrix: each partner's declared effect of each intervention type
    (0 where no row matches)."""
    out = np.zeros((n, len(spec.types)))
    for j, kind in enumerate(spec.types):
        rows = spec.effects[kind]
        effects = np.array([r.effect for r in rows] + [0.0])     # index -1 -> no match
        out[:, j] = effects[matched_row(rows, env, n)]
    return out


@dataclass(frozen=True)
class Drawn:
    partner: np.ndarray         # row index of the partner of each intervention
    kind: np.ndarray            # index into spec.types
    effect: np.ndarray          # realized effect (uplift_signal)
    churned: np.ndarray         # outcome
    days_before: np.ndarray     # intervention_date = as_of - days_before


def draw(spec: InterventionSpec, expected: np.ndarray, base: np.ndarray,
         rng: Callable[[str], np.random.Generator]) -> Drawn:
    """Draw every intervention of every partner; ``rng(name)`` gives a named stream."""
    n = base.size
    counts = rng("count").integers(spec.per_partner[0], spec.per_partner[1] + 1, n)
    partner = np.repeat(np.arange(n), counts)
    m = partner.size
    kind = draw_categorical(rng("type"), spec.shares, None, m)
    loc, scale = spec.noise
    effect = np.clip(expected[partner, kind] + rng("noise").normal(loc, scale, m), *spec.clip)
    final = np.clip(base[partner] + effect, 0.0, 1.0)
    churned = rng("outcome").random(m) < final
    days = rng("date").integers(spec.days_before[0], spec.days_before[1] + 1, m)
    return Drawn(partner, kind.astype(np.int32), effect, churned, days)
