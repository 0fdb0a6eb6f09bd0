"""The world's invariants: what one timeline implies across tables, checked on the tables
a run writes.

Each stage states its own (``Stage.invariants``): every event of a partner inside its
life, intervention outcomes that are the partner's churn, a label that is the churn date,
network features recomputable as of the feature date. Each is a count of violations; a
run whose count is not zero fails like a schema failure (exit 3) before anything is
published, and stats.json carries every count.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .errors import ValidationError
from .stage import WorldSpec


def check(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> list[dict]:
    """Every stage's invariants, each ``{invariant, violations, stage}``."""
    return [{**inv, "stage": s.name} for s in spec.stages for inv in s.invariants(spec, tables)]


def enforce(results: list[dict]) -> None:
    """Raise ValidationError naming every invariant with violations."""
    broken = [r for r in results if r["violations"]]
    if broken:
        raise ValidationError("the world contradicts itself:\n" + "\n".join(
            f"  {r['stage']}: {r['invariant']}: {r['violations']:,} violations" for r in broken))
