"""Every date of the world is a whole number of days before its ``as_of``."""
from __future__ import annotations

import numpy as np

DAY = np.timedelta64(1, "D")


def days_before(as_of: np.datetime64, days: object) -> np.ndarray:
    """``as_of`` minus whole days (an int array or scalar): every date of the world."""
    return as_of - np.asarray(days, dtype=np.int64) * DAY
