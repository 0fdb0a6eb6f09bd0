"""A throwaway local PostgreSQL server, for the test suite and the benchmarks.

Runs Debian's server binaries (initdb, pg_ctl) in a temporary directory on a free port;
as the ``postgres`` user when we are root, since the server refuses to run as root.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def bindir() -> Path | None:
    """Where pg_ctl lives (PATH first, then Debian's /usr/lib/postgresql/<v>/bin)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # a /usr/local/bin symlink -> the real bin directory
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(database: str = "deriv_churn", password: str = "devpassword") -> Iterator[str]:
    """Start a server with ``database`` created; yield its SQLAlchemy URL; stop and clean up.

    TCP connections need the password (scram-sha-256), as a real server would; the local
    socket trusts the owner so the password can be set."""
    bins = bindir()
    if bins is None:
        raise FileNotFoundError("PostgreSQL binaries (pg_ctl) not found: install Debian's 'postgresql' package")
    base = Path(tempfile.mkdtemp(prefix="pgtmp-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    try:
        subprocess.run([*as_user, str(bins / "initdb"), "--auth-local=trust", "--auth-host=scram-sha-256",
                        "-U", "postgres", "--no-sync", "-D", str(data)], check=True, capture_output=True)
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        subprocess.run([*as_user, str(bins / "pg_ctl"), "-D", str(data), "-w", "-o", opts,
                        "-l", str(base / "server.log"), "start"], check=True, capture_output=True)
        import psycopg2

        conn = psycopg2.connect(host=str(base), port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {database}")
        conn.cursor().execute("ALTER USER postgres PASSWORD %s", (password,))
        conn.close()
        yield f"postgresql+psycopg2://postgres:{password}@127.0.0.1:{port}/{database}"
    finally:
        if data.exists():
            subprocess.run([*as_user, str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
