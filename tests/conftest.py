"""Shared fixtures: real CLI runs of the simulator, read back from their files."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

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


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Run:
    """The default world (10,000 partners, seed 42), generated once through the CLI."""
    out = tmp_path_factory.mktemp("default_run")
    run_cli(out_dir=out)
    return Run(out)


@pytest.fixture(scope="session")
def compose():
    from simulator import compose as _compose

    return _compose


# ----------------------------------------------------------------------------- PostgreSQL

def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session, run as the `postgres` user when we are root.

    Missing binaries fail the suite in CI (CI=1, set by .ci/run) and skip, loudly, elsewhere.
    """
    bindir = _pg_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (pg_ctl) not found: install Debian's 'postgresql' package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:                      # the server refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-A", "trust", "-U", "postgres", "--no-sync",
                    "-D", str(data)], check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-o", opts,
                    "-l", str(base / "server.log"), "start"], check=True, capture_output=True)
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE deriv_churn")
        conn.close()
        yield f"postgresql+psycopg2://postgres:secret-pw@127.0.0.1:{port}/deriv_churn"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
