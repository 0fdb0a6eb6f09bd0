"""Executors: where the chunks of a world are generated (config group ``executor``).

Every executor yields the same :class:`~simulator.chunks.BlockResult` objects in block
order: the pilot (block 0, generated here, because its world-level solutions are every
other block's input), then each chunk's blocks. ``local`` runs the chunks in this
process; ``processes`` in a pool of worker processes on this machine; ``dask`` on a
``dask.distributed`` cluster (a LocalCluster, or the scheduler at ``executor.address``).
Workers rebuild the spec from the resolved config (plain data, cheap to send) and return
each block's tables as Arrow, which this process writes. At most ``workers + 1`` chunks
are in flight, so memory is bounded by the chunk size, not the world's.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping

import pyarrow as pa

from . import threads
from .chunks import BlockResult, chunks, run_block, workers
from .errors import ConfigError
from .spec import WorldSpec

log = logging.getLogger("simulator")


def as_arrow(spec: WorldSpec, result: BlockResult) -> BlockResult:
    """The block with its tables as Arrow (compact to send, what the writers take) and the
    CSV rows of those written as CSV, encoded here so that the writer only appends them."""
    from .sinks.encode import csv_rows

    t0 = time.perf_counter()
    tables = {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in result.tables.items()}
    csv = {name: csv_rows(table) for name, table in tables.items()
           if "csv" in spec.files_only.get(name, spec.formats)}
    seconds = {**result.seconds, "encode": time.perf_counter() - t0}
    return BlockResult(result.block, tables, result.facts, result.invariants, seconds, csv)


@functools.lru_cache(maxsize=4)
def _spec(resolved: bytes) -> WorldSpec:
    from .load import load_spec

    return load_spec(pickle.loads(resolved))


def _warm(resolved: bytes) -> int:
    """Import the stack and parse the spec before the first chunk arrives."""
    threads.single()
    _spec(resolved)
    return os.getpid()


def chunk_task(resolved: bytes, blocks: list[int], given: Mapping[str, float]) -> list[BlockResult]:
    """A worker's task: generate and validate ``blocks`` of the world ``resolved`` describes."""
    threads.single()
    spec = _spec(resolved)
    return [as_arrow(spec, run_block(spec, b, given)) for b in blocks]


def _resolved(spec: WorldSpec) -> bytes:
    """The resolved config as plain data (YAML's keys, True among them, survive a pickle, not JSON)."""
    return pickle.dumps(dict(spec.resolved))


def _in_order(submit: Callable[[list[int]], object], result: Callable[[object], list[BlockResult]],
              todo: list[list[int]], ahead: int) -> Iterator[BlockResult]:
    """Submit chunks ``ahead`` at a time and yield their blocks in order."""
    pending: deque = deque()
    queue = deque(todo)
    while queue or pending:
        while queue and len(pending) < ahead:
            pending.append(submit(queue.popleft()))
        yield from result(pending.popleft())


def blocks(spec: WorldSpec) -> Iterator[BlockResult]:
    """Every block of the world, generated, in block order: validated by the workers, or
    (``invariants`` None) left to the caller (:func:`simulator.chunks.validate_block`),
    which can check one block while the next is generated."""
    kind = spec.executor.kind
    # a world of one block needs no worker (but a scheduler named by executor.address is
    # still asked for, so that a wrong address fails at any size)
    if kind == "local" or not chunks(spec) and not (kind == "dask" and spec.executor.address):
        pilot = run_block(spec, 0, {}, validate=False)      # validated by the consumer, beside the next block
        yield pilot
        for chunk in chunks(spec):
            for b in chunk:
                yield run_block(spec, b, pilot.facts["solved"], validate=False)
    elif kind == "processes":
        yield from _processes(spec)
    else:
        yield from _dask(spec)


def _processes(spec: WorldSpec) -> Iterator[BlockResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo, resolved, n = chunks(spec), _resolved(spec), workers(spec)
    # spawn: a clean interpreter per worker (forking a process that runs threads is unsafe);
    # the workers start while this process generates the pilot, all of them at these
    # submits, with SIGINT ignored: Ctrl-C is this process's
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
    try:
        with _sigint_ignored():
            warm = [pool.submit(_warm, resolved) for _ in range(n)]
        pilot = run_block(spec, 0, {}, validate=False)
        yield pilot
        for w in warm:
            w.result()
        given = pilot.facts["solved"]
        yield from _in_order(lambda c: pool.submit(chunk_task, resolved, c, given),
                             lambda f: f.result(), todo, n + 1)
    finally:                                   # on a failure or an interrupt, queued chunks are dropped
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored meanwhile, so that processes started here inherit it ignored (where
    signals can be set: in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _dask(spec: WorldSpec) -> Iterator[BlockResult]:
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(["executor.kind: dask needs dask.distributed, which is not installed "
                           "(pip install 'partner-world-simulator[dask]')"]) from None

    todo, resolved, address, timeout = chunks(spec), _resolved(spec), spec.executor.address, spec.executor.timeout
    cluster = scratch = None
    logs = logging.getLogger("distributed")
    logs.setLevel(logging.WARNING)             # its INFO lines are not the run's
    if address is None:
        # A Ctrl-C is this process's: it closes the cluster. Its worker processes start with
        # SIGINT ignored (a spawn keeps an ignored signal across exec), or each would print
        # its own traceback. Whatever they would log is the cluster's business: a failed task
        # comes back to this process as its exception. Their scratch space goes with them.
        scratch = tempfile.TemporaryDirectory(prefix="simulator-dask-")
        with _sigint_ignored(), dask.config.set({"temporary-directory": scratch.name}):   # the scheduler's
            cluster = LocalCluster(n_workers=workers(spec), threads_per_worker=1, processes=True,
                                   dashboard_address=None, host="127.0.0.1", silence_logs=logging.CRITICAL,
                                   local_directory=scratch.name)
        address = cluster.scheduler_address
    try:
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError([f"executor.address: no dask scheduler answered at {address} within "
                               f"{timeout:g} s (executor.timeout; {type(exc).__name__}); start one (dask scheduler) "
                               f"or leave executor.address out for a LocalCluster"]) from None
        with client:
            try:
                client.wait_for_workers(1, timeout=timeout * 6)
            except TimeoutError:
                raise ConfigError([f"executor.address: the dask scheduler at {address} has no workers after "
                                   f"{timeout * 6:g} s (start some: dask worker {address})"]) from None
            n = len(client.scheduler_info().get("workers", {}))
            warm = client.run(_warm, resolved)
            log.debug("dask: %d workers at %s (%s)", n, address, ", ".join(map(str, warm.values())))
            try:
                pilot = run_block(spec, 0, {}, validate=False)
                yield pilot
                given = pilot.facts["solved"]
                yield from _in_order(lambda c: client.submit(chunk_task, resolved, c, given, pure=False),
                                     lambda f: f.result(), todo, n + 1)
            except BaseException:              # an interrupt, a failed check: closing logs its own breakage
                logs.setLevel(logging.CRITICAL)
                raise
    finally:
        if cluster is not None:
            cluster.close()
        if scratch is not None:
            scratch.cleanup()
