"""Vectorized identifiers: zero-padded partner ids and seeded UUIDs."""
from __future__ import annotations

import numpy as np
import pandas as pd

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES = [8, 13, 18, 23]
_DIGITS = [i for i in range(36) if i not in _DASHES]


def partner_ids(prefix: str, width: int, n: int) -> np.ndarray:
    """prefix + 1..n zero-padded to ``width`` digits (wider when n needs it)."""
    numbers = pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)
    return (prefix + numbers).to_numpy(dtype=object)


def uuid4s(rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` RFC 4122 version-4 UUID strings drawn from ``rng`` (deterministic per stream)."""
    raw = rng.integers(0, 256, size=(m, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.stack([raw >> 4, raw & 0x0F], axis=2).reshape(m, 32)
    chars = np.empty((m, 36), dtype=np.uint8)
    chars[:, _DIGITS] = _HEX[nibbles]
    chars[:, _DASHES] = ord("-")
    return chars.view("S36").ravel().astype(str).astype(object)
