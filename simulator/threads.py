"""How many threads a process's own pools use: two (both cores) in the run's process, one
in a worker process of ``executor=processes`` or ``dask``, where the workers already fill
the cores and more threads only contend for them (and for the GIL).

The BLAS (numpy's OpenBLAS) gets one thread while a world is generated (:func:`one_blas`),
and for good in a worker: it would start a thread per core for the histories' small
matrix-vector products, threads that spin beside our own pools and the other workers. At
1,000,000 partners that took 24.6 s against 21.7 s (local) and 27.5 s against 20.5 s
(processes); dask's nanny sets the same limit in its workers' environment.

A process of the run allocates from two glibc malloc arenas (:func:`few_arenas`): glibc
gives each new thread that allocates an arena of its own (up to eight per core), and the
arrays a block frees stay in them for the next block's to fragment. A 1M, 12-snapshot
horizon peaked at 2,510-2,704 MiB with them and 1,628-1,724 MiB with two, in the same time
(runs alternating between the two commits). Once a horizon's history is joined into its
table the heap's free pages go back (:func:`trim`)."""
from __future__ import annotations

import functools

THREADS = 2
ARENAS = 2            # glibc malloc arenas a process allocates from (:func:`few_arenas`)
M_ARENA_MAX = -8      # mallopt's parameter (glibc's malloc.h)


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library when it is glibc's (its malloc tuning), else None: macOS, musl, Windows.
    Found once (``find_library`` asks ldconfig)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def few_arenas() -> bool:
    """Let this process's threads share :data:`ARENAS` malloc arenas (glibc; elsewhere
    nothing, False). Called before the run starts its threads: the arenas a thread already
    has stay."""
    libc = _glibc()
    return bool(libc.mallopt(M_ARENA_MAX, ARENAS)) if libc is not None else False


def trim() -> bool:
    """Give the heap's free pages back to the system (glibc's malloc_trim; elsewhere
    nothing, False): after a history's blocks are joined into its table, the freed blocks
    would otherwise stay in the arenas, counted in the run's peak."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def single() -> None:
    """Make this process a worker: one thread in our pools, in Arrow's and in the BLAS's,
    and few malloc arenas."""
    global THREADS
    import pyarrow as pa
    from threadpoolctl import threadpool_limits

    THREADS = 1
    few_arenas()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    threadpool_limits(1)


def one_blas():
    """A context in which the BLAS has one thread (the caller's own setting back after: a
    notebook's is its own)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def count() -> int:
    return THREADS
