"""Scenario assignment: first matching rule wins, in declared order (np.select)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..expr import evaluate
from ..spec import ScenarioSpec


def assign(spec: ScenarioSpec, env: Mapping[str, object], churned: np.ndarray, n: int) -> pd.Categorical:
    """Non-churners get the default; churners the first matching rule, else the fallback."""
    masks = [~churned] + [churned & np.asarray(evaluate(r.expr, env, n), dtype=bool) for r in spec.rules]
    codes = np.select(masks, np.arange(len(masks)), default=len(masks))
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=list(spec.labels))
