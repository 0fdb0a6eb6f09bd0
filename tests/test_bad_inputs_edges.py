"""The catalogue of bad inputs at the run's edges (issue 22, "Signals and hangs"): config
files that would hang or exhaust the pre-check or Hydra, and a dask executor.address that
answers but is not a scheduler. Each is refused in bounded time with exit 2 and one line
naming the file or the config path, never a hang, a traceback or a run directory.

(SIGTERM and an interrupt after publication: tests/test_scale.py, tests/test_publication.py.)
"""
from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import run_cli
from simulator import preflight
from simulator.preflight import MAX_BYTES, MAX_DEPTH, MAX_NODES, yaml_problems

HEADER = "# @package _global_\n"


def _fifo(path: Path) -> None:
    os.mkfifo(path)                          # nothing ever writes to it: reading it blocks forever


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")             # endless: reading it fills memory


def _oversized(path: Path) -> None:
    path.write_text(HEADER + "".join(f"key_{i}: {i}\n" for i in range(MAX_BYTES // 10)))


def _alias_bomb(path: Path) -> None:
    """"Billion laughs": 9 aliases per level, 10 levels: 3.9 billion nodes once expanded, in 542 bytes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    path.write_text(HEADER + "\n".join(lines) + "\n")


def _deep(path: Path) -> None:
    path.write_text(HEADER + "x: " + "[" * 100_000 + "]" * 100_000 + "\n")   # a RecursionError in PyYAML


# (file name, how to make it, what its line says after the file's path)
CATALOGUE: list[tuple[str, Callable[[Path], None], str]] = [
    ("fifo.yaml", _fifo, "is a FIFO, not a regular file"),
    ("zero.yaml", _dev_zero, "is a character device, not a regular file"),
    ("big.yaml", _oversized, f"over the {MAX_BYTES // 1024} KiB limit for a config file"),
    ("bomb.yaml", _alias_bomb, f"its aliases expand it past {MAX_NODES:,} nodes"),
    ("deep.yaml", _deep, f"nests deeper than {MAX_DEPTH} levels"),
]


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs POSIX")
@pytest.mark.parametrize("name, make, fragment", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_an_unbounded_config_file_is_refused_by_the_pre_check(tmp_path, name, make, fragment):
    """Each file alone, in-process: one problem naming the file, in well under a second."""
    conf = tmp_path / "my_conf" / "experiment"
    conf.mkdir(parents=True)
    make(conf / name)
    start = time.monotonic()
    problems = yaml_problems([tmp_path / "my_conf"])
    assert time.monotonic() - start < 5
    assert len(problems) == 1 and problems[0].startswith(f"{conf / name}: ") and fragment in problems[0], problems


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs POSIX")
def test_unbounded_config_files_are_refused_before_hydra_reads_them(tmp_path):
    """The five together in a user's config tree, one of them the experiment chosen (Hydra
    would read it next: before the pre-check it hung, or died of a MemoryError or a
    RecursionError traceback): exit 2 in under 10 s, one line per file, no run directory."""
    conf = tmp_path / "my_conf" / "experiment"
    conf.mkdir(parents=True)
    for name, make, _ in CATALOGUE:
        make(conf / name)
    start = time.monotonic()
    proc = run_cli(f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "experiment=bomb",
                   out_dir=tmp_path / "run", check=False)
    assert time.monotonic() - start < 10
    assert proc.returncode == 2, proc.stderr
    assert "5 problems before the run" in proc.stderr and "Traceback" not in proc.stderr
    for name, _, fragment in CATALOGUE:
        assert f"{conf / name}: " in proc.stderr and fragment in proc.stderr, (name, proc.stderr)
    assert not (tmp_path / "run").exists()


def test_the_bounds_refuse_nothing_real(tmp_path):
    """The packaged config tree passes, and so does a file with a few aliases and some depth."""
    from simulator.__main__ import conf_dir

    assert yaml_problems([Path(conf_dir())]) == []
    ok = tmp_path / "ok"
    ok.mkdir()
    (ok / "aliases.yaml").write_text(HEADER + "base: &base {a: 1, b: [1, 2, 3]}\none: *base\ntwo: *base\n"
                                     + "deep: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    assert yaml_problems([ok]) == []


def test_a_config_directory_too_large_to_be_a_config_tree_is_refused(tmp_path, monkeypatch):
    """--config-dir / would walk a whole file system (symlinked directories are followed,
    each real one once, so a link loop ends): past MAX_DIRS it is one line naming the root."""
    monkeypatch.setattr(preflight, "MAX_DIRS", 3)
    for i in range(5):
        (tmp_path / f"d{i}").mkdir()
    (tmp_path / "d0" / "loop").symlink_to(tmp_path)
    problems = yaml_problems([tmp_path])
    assert problems == [f"{tmp_path}: more than 3 directories under this config directory; "
                        f"point --config-dir or hydra.searchpath at a config tree"]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def http_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (what a dashboard's address, or a typo, points at)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:    # the scheduler handshake it refuses is not the test's output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_address_that_answers_but_is_not_a_scheduler_is_refused_in_bounded_time(tmp_path, silent_server):
    """executor.address at a server that accepts and never answers: distributed's handshake
    waited without a limit (540 s+ seen). Now exit 2 within executor.timeout plus a few
    seconds, one line naming executor.address (an HTTP server: the next test, in-process)."""
    pytest.importorskip("distributed")
    start = time.monotonic()
    proc = run_cli("n_partners=1000", "db=none", "output.report=false", "executor=dask",
                   f"executor.address={silent_server}", "executor.timeout=2", out_dir=tmp_path / "run", check=False)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert f"executor.address: {silent_server} is not a dask scheduler" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    # the process's start-up (imports, Hydra: 9 s for any refused config on a busy 2-core
    # machine) plus 2 s + 1 s; what it replaces was unbounded
    assert elapsed < 40, elapsed


@pytest.mark.parametrize("server", ["silent_server", "http_server"])
def test_the_scheduler_check_is_bounded(request, server):
    """The check itself, without a process's start-up: refused within executor.timeout +
    HANDSHAKE_GRACE (and a margin for a busy machine), naming executor.address."""
    pytest.importorskip("distributed")
    from simulator.executors import HANDSHAKE_GRACE, scheduler_problem

    address = request.getfixturevalue(server)
    start = time.monotonic()
    problem = scheduler_problem(address, 1.0)
    assert time.monotonic() - start < 1.0 + HANDSHAKE_GRACE + 2
    assert problem is not None and problem.startswith(f"executor.address: {address} is not a dask scheduler")
