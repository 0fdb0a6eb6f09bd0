"""What a run needs from the machine, checked before any generation.

Memory: the whole world is held at once (until issue "Scale" streams it), so a run
needs about ``BYTES_PER_PARTNER`` per partner (measured: 2.2 GiB peak for 1M partners,
files only) plus ``BYTES_PER_HISTORY_PARTNER`` for each partner whose raw histories are
kept for writing (about 250 rows each). A size whose estimate exceeds the machine's
memory is refused with the estimate and the limit, instead of failing after minutes of
work. The output directory must be creatable and writable.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError
from .spec import WorldSpec

BYTES_PER_PARTNER = 2_400
BYTES_PER_HISTORY_PARTNER = 16_000
GIB = 1024 ** 3


def memory_limit() -> int | None:
    """The machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def estimate(spec: WorldSpec) -> int:
    """Bytes the run will hold at its peak, roughly."""
    kept = spec.n if spec.files_only else 0     # written histories are held until validated
    return spec.n * BYTES_PER_PARTNER + kept * BYTES_PER_HISTORY_PARTNER


def check(spec: WorldSpec, out_dir: Path) -> None:
    """Raise ConfigError when the world cannot fit in memory or ``out_dir`` is not writable."""
    problems = []
    limit, need = memory_limit(), estimate(spec)
    if limit is not None and need > limit:
        problems.append(f"n_partners: {spec.n:,} partners need about {need / GIB:,.1f} GiB of memory, and this "
                        f"machine has {limit / GIB:,.1f} GiB; at most about "
                        f"{int(limit / max(need / spec.n, 1)):,} partners fit"
                        + (" (activity.write=false keeps no history rows)" if spec.files_only else ""))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        problems.append(f"output directory {out_dir}: cannot be written ({exc.strerror or exc}); choose another "
                        f"with hydra.run.dir=DIR or output.dir=DIR")
    if problems:
        raise ConfigError(problems)
