"""Shared fixtures: real CLI runs of the simulator, read back from their files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One OpenMP thread per process, set before anything loads an OpenMP runtime (and passed on
# to the runs' subprocesses): the suite runs a worker per core, and a model's OpenMP pool
# (LightGBM, scikit-learn's gradient boosting) spinning beside the other worker's took a
# test of 8 s alone to 47 s in the suite.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*overrides: str, out_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m simulator hydra.run.dir=OUT overrides...`` in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "simulator", f"hydra.run.dir={out_dir}", *overrides],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"simulator failed ({proc.returncode}):\n{proc.stderr}")
    return proc


class Run:
    """A finished run directory and its tables (read from CSV, as a user would)."""

    def __init__(self, out_dir: Path):
        self.dir = out_dir

    def csv(self, table: str) -> pd.DataFrame:
        return pd.read_csv(self.dir / f"{table}.csv")

    def parquet(self, table: str) -> pd.DataFrame:
        return pd.read_parquet(self.dir / f"{table}.parquet")


def refusal(compose, *overrides: str) -> str:
    """The problems a composed config is refused with (it must be refused)."""
    from simulator.errors import ConfigError
    from simulator.load import load_spec

    with pytest.raises(ConfigError) as exc:
        load_spec(compose(list(overrides)))
    return str(exc.value)


def shared_run(tmp_path_factory, name: str, *overrides: str) -> Run:
    """A CLI run generated once for the whole session, whichever pytest-xdist worker asks
    first (the others wait on a lock, then read the same directory): a session fixture is
    otherwise built once per worker."""
    import fcntl

    root = tmp_path_factory.getbasetemp().parent        # shared by the workers of one session
    out = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "manifest.json").exists():
            run_cli(*overrides, out_dir=out)
    return Run(out)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Run:
    """The default world (10,000 partners, seed 42), generated once through the CLI."""
    return shared_run(tmp_path_factory, "default")


@pytest.fixture(scope="session")
def compose():
    from simulator import compose as _compose

    return _compose


# ----------------------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session (simulator.pgserver).

    Missing binaries fail the suite in CI (CI=1, set by .ci/run) and skip, loudly, elsewhere.
    """
    from simulator import pgserver

    if pgserver.bindir() is None:
        message = "PostgreSQL binaries (pg_ctl) not found: install Debian's 'postgresql' package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with pgserver.server(password="secret-pw") as url:
        yield url
