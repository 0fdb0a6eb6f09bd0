"""Scale: a world generated in blocks is the same world whatever the chunks, the executor
and the number of workers; it streams into its files and database; the pilot block's
world-level solves hold for every block (the progress bar: tests/test_review.py).

The worlds here are small (block_size=2048, so 3-5 blocks of a few thousand partners);
the sizes that show the speed are in benchmarks/scale.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli

WORLD = ["n_partners=7000", "block_size=2048", "activity.write=true", "output.report=false"]
# 30 whole blocks: at 60,000 the last block (608 partners) is too small for its network's
# shares and warns, a line on stderr whenever it is generated before an interrupt's
WHOLE_BLOCKS = 30 * 2048


def _digests(out: Path) -> dict[str, str]:
    m = json.loads((out / "manifest.json").read_text())
    return {name: f["sha256"] for t in m["tables"].values() for name, f in t["files"].items()}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    run_cli(*WORLD, "executor.chunk_size=2048", out_dir=out)
    return out


@pytest.mark.slow
def test_chunk_size_and_processes_change_no_byte(local_run, tmp_path):
    """One block per chunk, all blocks in one chunk, two worker processes: the same files
    (tables and histories, CSV and Parquet) and the same database rows."""
    whole = tmp_path / "whole"
    run_cli(*WORLD, "executor.chunk_size=1000000", out_dir=whole)
    procs = tmp_path / "procs"
    run_cli(*WORLD, "executor=processes", "executor.workers=2", "executor.chunk_size=2048", out_dir=procs)
    reference = _digests(local_run)
    assert len(reference) >= 14                        # five tables x 2 formats, five histories
    assert _digests(whole) == reference
    assert _digests(procs) == reference
    m = json.loads((procs / "manifest.json").read_text())
    assert m["n_partners"] == 7000 and m["tables"]["partners"]["rows"] == 7000
    with sqlite3.connect(procs / "world.sqlite") as db:   # every block's rows, in one load
        for table in ("partners", "interventions", "network_relationships", "uplift_truth"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == m["tables"][table]["rows"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_cli() -> str:
    """The `dask` command (dask.distributed's CLI); missing, the test fails in CI and skips elsewhere."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        distributed = None
    found = shutil.which("dask", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if distributed is None or found is None:
        message = "dask.distributed is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.slow
def test_a_real_dask_cluster_gives_the_same_bytes(local_run, tmp_path):
    """A dask-scheduler and two dask-worker processes started here on 127.0.0.1 (and
    stopped): the files are byte-identical to the local run's."""
    dask = _dask_cli()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], env=env, cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        address = f"tcp://127.0.0.1:{port}"
        workers = [subprocess.Popen([dask, "worker", address, "--nthreads", "1",
                                     "--no-dashboard", "--host", "127.0.0.1"], env=env, cwd=tmp_path,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            assert len(client.scheduler_info()["workers"]) == 2
        out = tmp_path / "dask"
        run_cli(*WORLD, "executor=dask", f"executor.address={address}", "executor.chunk_size=2048", out_dir=out)
        assert _digests(out) == _digests(local_run)
    finally:
        for p in [*workers, scheduler]:
            p.terminate()
        for p in [*workers, scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_the_pilot_block_solves_once_for_every_block(local_run):
    """The churn intercept is solved on block 0 (exactly the declared rate there) and every
    other block uses it: the world's rate is the target within its sampling error."""
    partners = pd.read_parquet(local_run / "partners.parquet")
    m = json.loads((local_run / "manifest.json").read_text())
    rate = 0.20
    feature_date = np.datetime64(m["feature_date"])
    active = partners["churned_at"].isna() | (partners["churned_at"] > feature_date)
    pilot = active.iloc[:2048]
    golden = partners["partner_id"].iloc[:5]
    assert golden.tolist() == ["P00001", "P00002", "P00003", "P00004", "P00005"]
    k = partners.loc[:2047][pilot]["churn_label"].sum()
    # exact on the pilot, or within one where no intercept gives the count: a sub's churn
    # tips its master at the same intercept, two at once (churn.solve_intercept; here 385
    # below it, 387 at it, for 386)
    assert abs(k - round(rate * pilot.sum())) <= 1
    rest = partners.iloc[2048:][active.iloc[2048:]]["churn_label"].mean()
    se = np.sqrt(rate * (1 - rate) / active.iloc[2048:].sum())
    assert abs(rest - rate) < 3 * se + np.sqrt(rate * (1 - rate) / pilot.sum()) * 3
    assert partners["partner_id"].is_unique and partners["partner_id"].iloc[-1] == "P07000"
    review = json.loads((local_run / "stats.json").read_text())["review"]   # the pilot's figures, the world's rate
    assert review["partners"] == 2048 and review["world"]["cohort"] == int(active.sum())
    assert review["world"]["churners"] == int(partners.loc[active, "churn_label"].sum())
    edges = pd.read_parquet(local_run / "network_relationships.parquet")
    row = pd.Series(np.arange(len(partners)), index=partners["partner_id"])
    block_of = lambda ids: row[ids].to_numpy() // 2048
    assert (block_of(edges["master_affiliate_id"]) == block_of(edges["sub_affiliate_id"])).all()   # subtrees in a block


def test_a_run_killed_while_streaming_leaves_the_previous_run(local_run, tmp_path):
    """SIGKILL once the first blocks are in the staged files: the directory still shows the
    previous complete run, byte for byte, and no half-written file."""
    from test_publication import _published

    out = tmp_path / "run"
    run_cli(*WORLD, "n_partners=3000", out_dir=out)
    before = _digests(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", *WORLD,
                             "n_partners=40000", "executor.chunk_size=2048"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:                    # the first block's history is on disk
        staged = [p for p in out.glob(".partial-*/commissions_daily.parquet") if p.stat().st_size > 1 << 20]
        if staged:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staged, "the run never started streaming"
    state = _published(out)
    assert state is not None and state["n_partners"] == 3000
    assert _digests(out) == before


def test_the_library_returns_every_block_validated(local_run, compose, monkeypatch):
    """simulator.generate: the blocks' tables as one DataFrame each, every block checked,
    the same rows as the run's files."""
    import simulator.schemas as schemas_module
    from simulator import generate

    seen = []
    real = schemas_module.validate_tables
    monkeypatch.setattr(schemas_module, "validate_tables", lambda spec, tables: seen.append(spec.block) or real(spec, tables))
    tables = generate(compose([w for w in WORLD if not w.startswith("output.")] + ["db=none"]))
    assert seen == [0, 1, 2, 3]
    partners = pd.read_parquet(local_run / "partners.parquet")
    assert len(tables["partners"]) == 7000
    pd.testing.assert_series_equal(tables["partners"]["churn_label"], partners["churn_label"], check_names=False)
    assert tables["partners"]["partner_id"].tolist() == partners["partner_id"].tolist()


def test_a_world_is_generated_with_one_blas_thread_and_the_callers_setting_kept(compose, monkeypatch):
    """The histories' matrix-vector products run on one BLAS thread (its threads would spin
    beside our pools: simulator/threads.py); a notebook's own BLAS setting is back after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import simulator.histories.reduce as reduce_module
    from simulator import generate

    def blas() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen = []
    real = reduce_module.periods_since_last          # (read by the days since the last login)
    monkeypatch.setattr(reduce_module, "periods_since_last", lambda *a: seen.append(blas()) or real(*a))
    with threadpool_limits(2, user_api="blas"):
        outer = blas()                                 # (2, where the machine has two cores)
        generate(compose(["n_partners=2000", "db=none", "output.report=false"]))
        assert blas() == outer
    assert seen and all(threads == {1} for threads in seen)


ARENAS = """
import ctypes, ctypes.util, sys, threading
from simulator import threads
if sys.argv[1] == "few":
    assert threads.few_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
go = threading.Barrier(8)
def work():
    go.wait()
    keep = [bytearray(4096) for _ in range(100)]     # (each new thread allocating takes an arena)
ts = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
libc.fopen.restype = ctypes.c_void_p
fp = ctypes.c_void_p(libc.fopen(sys.argv[2].encode(), b"w"))
libc.malloc_info(0, fp); libc.fclose(fp)
print(open(sys.argv[2]).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="malloc arenas are glibc's")
def test_the_run_allocates_from_two_malloc_arenas(tmp_path):
    """Eight threads allocating take eight arenas of their own (glibc), where the run's
    processes keep to two (simulator/threads.py: a horizon's peak fell by a third); the
    command line sets it before any thread starts."""
    def heaps(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", ARENAS, mode, str(tmp_path / f"{mode}.xml")], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return int(out.stdout.strip())
    assert heaps("many") > 2 and heaps("few") <= 2
    calls = subprocess.run([sys.executable, "-c", (
        "import sys; import simulator.threads as t; real = t.few_arenas; calls = []\n"
        "t.few_arenas = lambda: calls.append(1) or real()\n"
        "sys.argv = ['simulator', '--help']\n"
        "from simulator.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('calls', len(calls), file=sys.stderr)")], cwd=ROOT, capture_output=True, text=True)
    assert "calls 1" in calls.stderr


def test_a_horizon_is_the_same_on_one_thread_and_on_two(compose, monkeypatch):
    """On two threads a horizon's moving columns are walked in parts of rows, and each
    history's dates are made while its blocks (three here, of 1,024 partners) run through them:
    the same tables as one thread making every date, then running the blocks in turn (parts
    of 512 rows, so 3,000 partners are split; a history input walks, so its noise is drawn
    too)."""
    import simulator.stages.forward as forward_module
    import simulator.stages.moving as moving_module
    from simulator import generate, threads

    world = ["n_partners=3000", "experiment=horizon_histories", "db=none", "output.report=false",
             "+activity.histories.daily.traffic.persistence=0.7"]
    monkeypatch.setattr(forward_module, "BLOCK", 1024)
    order = []                                         # ("date", j) as made, ("block", j) as run
    made, run = forward_module._Made.up_to, forward_module._Made.wait
    monkeypatch.setattr(forward_module._Made, "up_to", lambda self, j: order.append(("date", j)) or made(self, j))
    monkeypatch.setattr(forward_module._Made, "wait", lambda self, j: run(self, j) or order.append(("block", j)))
    monkeypatch.setattr(threads, "THREADS", 1)
    alone = generate(compose(world))
    first_block = order.index(("block", 0))
    assert all(kind == "date" for kind, _ in order[:first_block])   # (every date made before any block)
    order.clear()
    # Side by side, a block runs a date while later dates are still to make: so on two
    # threads each history's sixth date waits (a minute at most) for its first block to run
    # its first date. Made one after the other, it would wait in vain, and be made first.
    ran_first = threading.Condition()
    first_run = set()

    def run_noting(self, j):
        run(self, j)
        order.append(("block", j))
        if j == 0:
            with ran_first:
                first_run.add(id(self))
                ran_first.notify_all()

    def made_when_a_block_ran(self, j):
        if j == 5:
            with ran_first:
                ran_first.wait_for(lambda: id(self) in first_run, timeout=60)
        order.append(("date", j))
        made(self, j)

    monkeypatch.setattr(forward_module._Made, "up_to", made_when_a_block_ran)
    monkeypatch.setattr(forward_module._Made, "wait", run_noting)
    monkeypatch.setattr(threads, "THREADS", 2)
    monkeypatch.setattr(moving_module, "WALK_PART", 512)
    walked = []
    real = moving_module.Motion._walk_rows
    monkeypatch.setattr(moving_module.Motion, "_walk_rows", lambda self, *a: walked.append(a[-1]) or real(self, *a))
    both = generate(compose(world))
    assert walked and max(walked) < 3000               # (the walk was split)
    assert ("block", 0) in order and order.index(("block", 0)) < order.index(("date", 5))   # (side by side)
    assert set(both) == set(alone)
    assert [name for name, frame in alone.items() if not both[name].equals(frame)] == []


def test_a_failing_history_stops_its_other_blocks(compose, monkeypatch):
    """A block that fails stops the history's other blocks at their next date, and the
    failure is the one raised (not a block that stopped because of it)."""
    import dataclasses

    import simulator.histories.daily as daily_module
    import simulator.stages.forward as forward_module
    from simulator import generate, threads
    from simulator.histories import KINDS

    monkeypatch.setattr(threads, "THREADS", 2)
    monkeypatch.setattr(forward_module, "BLOCK", 300)   # 10 blocks of the history
    dates = []
    real = daily_module.advance

    def advance(h, b, inp, rng, *a, **k):
        dates.append(1)
        if len(dates) == 3:
            raise RuntimeError("the third date of a daily block")
        return real(h, b, inp, rng, *a, **k)
    kind = daily_module.KIND
    monkeypatch.setitem(KINDS, kind.name, dataclasses.replace(kind, forward=dataclasses.replace(kind.forward,
                                                                                         advance=advance)))
    with pytest.raises(RuntimeError, match="the third date"):
        generate(compose(["n_partners=3000", "experiment=horizon_histories", "db=none", "output.report=false"]))
    assert len(dates) < 40                             # (10 blocks x 20 dates had they all run on)


@pytest.mark.parametrize("blocks", ["block_size=2048", "block_size=65536"])   # 3 blocks; 1, the pilot alone
def test_an_unreachable_dask_scheduler_is_one_clear_line(tmp_path, blocks):
    """executor.address where nothing listens: exit 2 within the connect timeout, the
    address and what to do, no traceback, no run directory; at any size (a world of one
    block needs no worker, but the address it names is still wrong)."""
    _dask_cli()
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.time()
    proc = run_cli("n_partners=5000", blocks, "db=none", "executor=dask", f"executor.address={address}",
                   "executor.timeout=2", out_dir=tmp_path / "run", check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"executor.address: no dask scheduler answered at {address} within 2 s (executor.timeout" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    assert time.time() - start < 30


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_ctrl_c_is_one_line_exit_130_and_nothing_published(tmp_path, executor):
    """SIGINT to the whole process group while blocks stream (worker processes, or a dask
    LocalCluster's nannies and workers, get it too): one line, exit 130, the staging
    removed, no worker left behind. With dask, port 8787 is taken (as a notebook's cluster
    takes it): the LocalCluster's scheduler served its HTTP there, and distributed warned
    on our stderr that it was in use."""
    taken = socket.socket()
    if executor == "dask":
        _dask_cli()
        try:
            taken.bind(("0.0.0.0", 8787))
            taken.listen()
        except OSError:                              # (taken already: as well)
            pass
    out, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}   # what the cluster leaves there
    proc = subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", *WORLD, f"n_partners={WHOLE_BLOCKS}",
                             f"executor={executor}", "executor.workers=2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob(".partial-*/partners.csv")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)             # what a terminal sends the whole group
    _, err = proc.communicate(timeout=60)
    taken.close()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [f"interrupted: nothing of this run was published in {out}"]   # none before
    assert not list(out.glob(".partial-*")) and not (out / "manifest.json").exists()
    assert not list(scratch.iterdir())              # no dask-scratch-space, no temporary directory
    deadline = time.time() + 10                   # the workers and multiprocessing's resource tracker go
    while time.time() < deadline and subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 1   # no worker left


def test_sigterm_is_ctrl_c_exit_143_and_no_worker_left(tmp_path):
    """SIGTERM to the run's process alone (as kill, timeout or a container stop send it)
    while blocks stream with executor=processes: it used to kill only that process and
    leave the workers running (13 min+ seen). Now one line, exit 143, the staging removed,
    no process of the run left (the LocalCluster's case is the Ctrl-C test's cleanup)."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", *WORLD, f"n_partners={WHOLE_BLOCKS}",
                             "executor=processes", "executor.workers=2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob(".partial-*/partners.csv")):
        time.sleep(0.05)
    assert subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], capture_output=True).returncode == 0
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [f"terminated (SIGTERM): nothing of this run was published in {out}"]
    assert not list(out.glob(".partial-*")) and not (out / "manifest.json").exists()
    deadline = time.time() + 10                   # multiprocessing's resource tracker goes after the workers
    while time.time() < deadline and subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 1   # no worker left


ORPHAN = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from simulator.executors import exit_with_parent

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 600)
    time.sleep(600)
"""


def test_a_worker_exits_when_the_run_is_sigkilled():
    """A SIGKILLed run can clean nothing up: its workers watch it and exit within a second
    or two (each worker process of executor=processes, and each LocalCluster worker)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.time() + 10
    while time.time() < deadline and _running(worker):
        time.sleep(0.1)
    alive = _running(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker outlived its SIGKILLed parent"


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_workers_are_never_more_than_the_chunks(compose):
    """executor.workers=100 on a world of four blocks starts three workers (one per chunk
    after the pilot), and the memory check counts those three, not a hundred."""
    from simulator import resources
    from simulator.chunks import chunks, workers
    from simulator.load import load_spec

    many = load_spec(compose(["n_partners=200000", "executor=processes", "executor.workers=100"]))
    three = load_spec(compose(["n_partners=200000", "executor=processes", "executor.workers=3"]))
    assert len(chunks(many)) == 3 and workers(many) == 3
    assert resources.estimate(many) == resources.estimate(three)   # was a hundred workers' (29.7 GiB, refused)
