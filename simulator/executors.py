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

from . import threads
from .chunks import BlockResult, chunks, run_block, workers
from .errors import ConfigError
from .spec import WorldSpec

log = logging.getLogger("simulator")


def as_arrow(spec: WorldSpec, result: BlockResult) -> BlockResult:
    """The block with its tables as Arrow (compact to send, what the writers take) and the
    CSV rows of those written as CSV, encoded here so that the writer only appends them."""
    from .sinks.encode import arrow_table, csv_rows

    t0 = time.perf_counter()
    tables = {name: arrow_table(frame, {spec.key}) for name, frame in result.tables.items()}
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


PARENT_POLL = 1.0                              # seconds between a worker's looks at its parent


def exit_with_parent(parent: int) -> None:
    """Make this worker process exit once ``parent`` (the run's process) is gone.

    A worker blocked writing its result to a parent that was SIGKILLed (which can run no
    cleanup) would otherwise wait forever: it holds the read end of that pipe itself. When
    the parent dies the worker is re-parented, so its parent pid changes; a daemon thread
    looks once a second (cheap, and needs no Linux-only ``prctl``)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)                            # no cleanup: whatever it would flush has no reader

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


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
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))
    try:
        with _starting_processes():
            warm = [pool.submit(_warm, resolved) for _ in range(n)]
        pilot = run_block(spec, 0, {}, validate=False)
        yield pilot
        for w in warm:
            w.result()
        given = pilot.facts["solved"]
        yield from _in_order(lambda c: pool.submit(chunk_task, resolved, c, given),
                             lambda f: f.result(), todo, n + 1)
    except BaseException:                      # an interrupt, a failed check, or the consumer stopped
        _terminate_workers(pool)
        raise
    finally:                                   # queued chunks are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool) -> None:
    """Stop a pool's workers now. Waiting for them (``shutdown(wait=True)``) would let the
    chunks in flight run to their end, minutes for a large world, and a SIGTERM or Ctrl-C
    must not leave them running; their results would be thrown away anyway."""
    terminate = getattr(pool, "terminate_workers", None)      # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((pool._processes or {}).values()):   # before 3.14, the pool's own table
        if process.is_alive():
            process.terminate()


HANDSHAKE_GRACE = 1.0                          # seconds past executor.timeout for the handshake


def scheduler_problem(address: str, timeout: float) -> str | None:
    """None if a dask scheduler answers at ``address``; else the line that refuses
    ``executor.address``, within ``timeout`` plus :data:`HANDSHAKE_GRACE` seconds.

    ``Client(address, timeout=...)`` bounds only the TCP connect: distributed then waits for
    the other end's handshake without a limit, so a server that accepts and never answers,
    or one that speaks another protocol (HTTP), would hold the run forever. Here the
    connect, the handshake and an ``identity`` call share one deadline. It is a little
    past the connect's own, so that an address where nothing listens still fails as the
    connect's error (retried until ``timeout``), not as a silent server."""
    import asyncio

    from distributed.comm import connect

    async def identify() -> object:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    use = "leave executor.address out for a LocalCluster"
    try:
        reply = asyncio.run(asyncio.wait_for(identify(), timeout + HANDSHAKE_GRACE))
    except (TimeoutError, asyncio.TimeoutError):
        why = f"it accepted the connection but sent nothing within {timeout + HANDSHAKE_GRACE:g} s"
    except OSError as exc:                     # refused, unreachable, or closed on us
        return (f"executor.address: no dask scheduler answered at {address} within {timeout:g} s "
                f"(executor.timeout; {type(exc).__name__}); start one (dask scheduler) or {use}")
    except Exception as exc:                   # whatever another protocol's bytes decode to
        why = f"it answered in another protocol ({type(exc).__name__})"
    else:
        kind = reply.get("type") if isinstance(reply, dict) else None
        if kind == "Scheduler":
            return None
        why = f"it is a dask {kind}" if isinstance(kind, str) else "its answer is not a scheduler's"
    return (f"executor.address: {address} is not a dask scheduler ({why}; executor.timeout={timeout:g}); "
            f"give the address that dask scheduler prints, or {use}")


@contextlib.contextmanager
def _starting_processes() -> Iterator[None]:
    """Meanwhile, processes can be started safely (where signals can be set: in the main thread).

    SIGINT is ignored, so that the processes started inherit it ignored (a spawn keeps an
    ignored signal across exec): a Ctrl-C is this process's, which stops them. A SIGTERM is
    held until the end, then raised: in the middle of ``LocalCluster(...)`` it would leave
    a cluster that nothing holds, so nothing closes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        if held:
            signal.raise_signal(signal.SIGTERM)


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
    try:
        if address is None:
            # A Ctrl-C is this process's: it closes the cluster. Its worker processes start with
            # SIGINT ignored (a spawn keeps an ignored signal across exec), or each would print
            # its own traceback. Whatever they would log is the cluster's business: a failed task
            # comes back to this process as its exception. Their scratch space goes with them.
            scratch = tempfile.TemporaryDirectory(prefix="simulator-dask-")
            with _starting_processes(), dask.config.set({"temporary-directory": scratch.name}):   # the scheduler's
                # no dashboard; its scheduler's HTTP server (health, metrics) on a free port, not on
                # 8787, where a notebook's cluster may be (distributed would warn on our stderr)
                cluster = LocalCluster(n_workers=workers(spec), threads_per_worker=1, processes=True,
                                       dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                       host="127.0.0.1", silence_logs=logging.CRITICAL, local_directory=scratch.name)
            address = cluster.scheduler_address
        else:                                  # a LocalCluster's scheduler is ours, no need to ask
            problem = scheduler_problem(address, timeout)
            if problem is not None:
                raise ConfigError([problem])
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError([f"executor.address: no dask scheduler answered at {address} within "
                               f"{timeout:g} s (executor.timeout; {type(exc).__name__}); start one (dask scheduler) "
                               f"or leave executor.address out for a LocalCluster"]) from None
        with client:
            if cluster is not None:            # its workers go when this process does, even SIGKILLed
                client.run(exit_with_parent, os.getpid())
            try:
                client.wait_for_workers(1, timeout=timeout * 6)
            except TimeoutError:
                raise ConfigError([f"executor.address: the dask scheduler at {address} has no workers after "
                                   f"{timeout * 6:g} s (start some: dask worker {address})"]) from None
            n = len(client.scheduler_info().get("workers", {}))
            warm = client.run(_warm, resolved)
            log.debug("dask: %d workers at %s (%s)", n, address, ", ".join(map(str, warm.values())))
            pilot = run_block(spec, 0, {}, validate=False)
            yield pilot
            given = pilot.facts["solved"]
            yield from _in_order(lambda c: client.submit(chunk_task, resolved, c, given, pure=False),
                                 lambda f: f.result(), todo, n + 1)
    except BaseException:                      # an interrupt, a failed check: closing logs its own breakage
        logs.setLevel(logging.CRITICAL)
        raise
    finally:
        if cluster is not None:
            cluster.close()
        if scratch is not None:
            scratch.cleanup()
