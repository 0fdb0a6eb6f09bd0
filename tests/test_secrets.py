"""No password in any file or line: a single run and a multirun with a database URL that
holds one (the server is unreachable, so each run ends with exit 4 after writing files)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

SECRET = "s3cret-Pw"
URL = f"db.url=postgresql+psycopg2://admin:{SECRET}@127.0.0.1:1/churn"


def _leaks(directory, *streams) -> list[str]:
    found = [str(p) for p in directory.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    return found + [f"stream {i}" for i, s in enumerate(streams) if SECRET in s]


FORMS = {
    "userinfo": ([URL], {}),
    "query-string": ([f"db.url='postgresql+psycopg2://admin@127.0.0.1:1/churn?password={SECRET}'"], {}),
    "environment": ([], {"DATABASE_URL": f"postgresql+psycopg2://admin:{SECRET}@127.0.0.1:1/churn"}),
    "password-variable": ([], {"POSTGRES_PASSWORD": SECRET}),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_single_run_keeps_the_password_out_of_every_file_and_line(tmp_path, form):
    """Every URL form (userinfo, query string, the DATABASE_URL or POSTGRES_PASSWORD
    variable), with the report on: every file of the run and both streams are clean."""
    args, env = FORMS[form]
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", "n_partners=1000",
                           "db=postgres", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_PASSWORD")},
                               "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 4 and "cannot connect" in proc.stderr, proc.stderr
    assert (out / "report.html").exists()
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
