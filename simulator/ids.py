"""Vectorized identifiers: zero-padded partner ids and seeded UUIDs.

Both are built as fixed-width byte matrices and handed to Arrow as one buffer, so a
million ids cost a few array operations rather than a million Python strings.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode("ascii"), dtype=np.uint16)
# the 36 characters of a UUID as positions among 32 hex digits and a dash (index 32)
_UUID_LAYOUT = np.array([*range(0, 8), 32, *range(8, 12), 32, *range(12, 16), 32, *range(16, 20), 32,
                         *range(20, 32)])


def _strings(chars: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """(m, w) ASCII bytes -> pandas ``str`` array of m strings of width w: the matrix is
    the Arrow string array's data buffer, the offsets every w bytes (no copy per string)."""
    m, w = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    offsets = np.arange(m + 1, dtype=np.int64) * w
    return pd.array(pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(data)), dtype="str")


def partner_ids(prefix: str, width: int, n: int, start: int = 0) -> pd.api.extensions.ExtensionArray:
    """prefix + start+1..start+n zero-padded to at least ``width`` digits, like f"{prefix}{i:0{width}d}"."""
    digits = pc.utf8_lpad(pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64)).cast(pa.string()),
                          width=width, padding="0")
    ids = pc.binary_join_element_wise(pa.scalar(prefix), digits, "")
    return pd.array(ids.cast(pa.large_string()), dtype="str")


def uuid4s(rng: np.random.Generator, m: int) -> pd.api.extensions.ExtensionArray:
    """``m`` RFC 4122 version-4 UUID strings drawn from ``rng`` (deterministic per stream)."""
    raw = rng.integers(0, 256, size=(m, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    # two ASCII hex digits per byte, then one gather into 8-4-4-4-12 with the dashes
    hexed = np.concatenate([_HEX_PAIRS[raw].view(np.uint8).reshape(m, 32), np.full((m, 1), ord("-"), np.uint8)],
                           axis=1)
    return _strings(hexed[:, _UUID_LAYOUT])


def rows_of(keys: pd.Series, values: pd.Series) -> np.ndarray:
    """Row position in ``keys`` of each of ``values`` (-1 where absent), by Arrow's hash
    kernel: a child table's partner ids back to partners rows."""
    found = pc.index_in(pa.array(values, type=pa.large_string()), value_set=pa.array(keys, type=pa.large_string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
