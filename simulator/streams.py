"""Named random streams: every draw comes from a generator keyed by (seed, name...).

Adding, removing or changing one declared thing only moves the draws that are keyed by
it, which is what keeps config diffs readable.
"""
from __future__ import annotations

import hashlib

import numpy as np


def _words(key: str) -> list[int]:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def stream(seed: int, *names: str) -> np.random.Generator:
    """A generator determined only by the seed and the stream's names."""
    key = "\x1f".join(names)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *_words(key)])))
