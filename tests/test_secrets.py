"""No password in any file or line: a single run and a multirun with a database URL that
holds one (the server is unreachable, so each run ends with exit 4 after writing files)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli

SECRET = "s3cret-Pw"
URL = f"db.url=postgresql+psycopg2://admin:{SECRET}@127.0.0.1:1/churn"


def _leaks(directory, *streams) -> list[str]:
    found = [str(p) for p in directory.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    return found + [f"stream {i}" for i, s in enumerate(streams) if SECRET in s]


def test_a_single_run_keeps_the_password_out_of_every_file_and_line(tmp_path):
    proc = run_cli("n_partners=1000", "db=postgres", URL, "output.report=false", out_dir=tmp_path / "run", check=False)
    assert proc.returncode == 4 and "cannot connect" in proc.stderr
    assert not _leaks(tmp_path, proc.stdout, proc.stderr)


@pytest.mark.parametrize("args", [[], ["--cfg", "job"]], ids=["multirun", "cfg-job"])
def test_a_multirun_keeps_the_password_out_of_every_file_and_line(tmp_path, args):
    cmd = [sys.executable, "-m", "simulator", "-m", "seed=1,2", "n_partners=1000", "db=postgres", URL,
           "output.report=false", f"hydra.sweep.dir={tmp_path / 'sweep'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if not args:
        assert (tmp_path / "sweep" / "multirun.yaml").is_file()
        assert "***" in proc.stdout                    # the launcher's line, masked
    leaks = _leaks(tmp_path, proc.stdout, proc.stderr)
    assert not leaks, leaks
