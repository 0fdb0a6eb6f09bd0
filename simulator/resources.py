"""What a run needs from the machine, checked before any generation.

Memory: a world is generated in blocks (simulator.chunks), so a run holds the blocks in
flight, not the world: about ``BYTES_PER_PARTNER`` per partner of those blocks (measured:
0.75 GiB peak for 1M partners in blocks of 65,536, files only) plus
``BYTES_PER_HISTORY_PARTNER`` for each whose raw histories are written (about 250 rows
each); :func:`in_flight` counts the blocks. A size whose estimate exceeds the machine's
memory is refused with the estimate and the limit, instead of failing after minutes of
work. Disk: about ``DISK_PER_PARTNER`` bytes per partner per table format (measured: 1.03 GB
for 1M partners as CSV + Parquet), ``DISK_PER_HISTORY_PARTNER`` for written histories and
the same again for a SQLite file in the run directory; a world whose estimate exceeds the
free space is refused (the previous run stays until the switch, so the new one needs its
own room). The output directory must be creatable and writable.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .chunks import blocks_per_chunk, chunks, n_blocks, workers
from .errors import ConfigError
from .spec import WorldSpec

BYTES_PER_PARTNER = 2_400
BYTES_PER_HISTORY_PARTNER = 16_000
DISK_PER_PARTNER = 520                 # per format of the main tables (CSV or Parquet)
DISK_PER_HISTORY_PARTNER = 950         # the five history tables as Parquet
BYTES_PER_WORKER = 300 * 1024 ** 2     # a spawned worker process (measured: about 250 MiB idle)
GIB = 1024 ** 3


def memory_limit() -> int | None:
    """The machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def in_flight(spec: WorldSpec) -> int:
    """Blocks alive at once, at most: the pilot (kept for the review), the one being
    generated, the one the sinks are on and one waiting for them; with workers, each
    worker's chunk and the chunks that wait for the writer."""
    if spec.executor.kind == "local" or not chunks(spec):   # (one block: no worker either)
        return 4
    return min(n_blocks(spec), 3 + blocks_per_chunk(spec) * (2 * workers(spec) + 1))


def estimate(spec: WorldSpec) -> int:
    """Bytes the run will hold at its peak, roughly (summed over its processes: a worker's
    interpreter with the stack imported is about ``BYTES_PER_WORKER``)."""
    partners = min(spec.n, in_flight(spec) * spec.block_size)
    per = BYTES_PER_PARTNER + (BYTES_PER_HISTORY_PARTNER if spec.files_only else 0)
    local = spec.executor.kind == "local" or spec.executor.address or not chunks(spec)   # no worker here
    return partners * per + (0 if local else workers(spec)) * BYTES_PER_WORKER


def disk_estimate(spec: WorldSpec) -> int:
    """Bytes the run will write into its directory, roughly."""
    histories = spec.n * DISK_PER_HISTORY_PARTNER if spec.files_only else 0
    sqlite = spec.n * DISK_PER_PARTNER * 2 if spec.db is not None and spec.db.kind == "sqlite" \
        and not Path(spec.db.target).is_absolute() else 0
    return spec.n * DISK_PER_PARTNER * max(len(spec.formats), 1) + histories + sqlite


def check(spec: WorldSpec, out_dir: Path) -> None:
    """Raise ConfigError when the world cannot fit in memory or ``out_dir`` is not writable."""
    problems = []
    limit, need = memory_limit(), estimate(spec)
    if limit is not None and need > limit:
        problems.append(f"executor: {in_flight(spec)} blocks of {spec.block_size:,} partners in flight need about "
                        f"{need / GIB:,.1f} GiB of memory, and this machine has {limit / GIB:,.1f} GiB; "
                        f"fewer workers (executor.workers) or a smaller executor.chunk_size fit"
                        + (" (activity.write=false keeps no history rows)" if spec.files_only else ""))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        problems.append(f"output directory {out_dir}: cannot be written ({exc.strerror or exc}); choose another "
                        f"with hydra.run.dir=DIR or output.dir=DIR")
    else:
        free, disk = shutil.disk_usage(out_dir).free, disk_estimate(spec)
        if disk > free:
            problems.append(f"n_partners: {spec.n:,} partners write about {disk / GIB:,.1f} GiB into {out_dir}, "
                            f"which has {free / GIB:,.1f} GiB free; at most about "
                            f"{int(free / max(disk / spec.n, 1)):,} partners fit (or write elsewhere with "
                            f"hydra.run.dir=DIR, or fewer formats: output.formats=[parquet])")
    if problems:
        raise ConfigError(problems)
