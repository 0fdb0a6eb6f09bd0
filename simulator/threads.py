"""How many threads a process's own pools use: two (both cores) in the run's process, one
in a worker process of ``executor=processes`` or ``dask``, where the workers already fill
the cores and more threads only contend for them (and for the GIL)."""
from __future__ import annotations

THREADS = 2


def single() -> None:
    """Make this process a worker: one thread in our pools and in Arrow's."""
    global THREADS
    import pyarrow as pa

    THREADS = 1
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def count() -> int:
    return THREADS
