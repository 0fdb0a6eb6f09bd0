"""No password in any file, directory name or line, whatever form it comes in.

The masking itself is checked on a table of texts (fast); then real runs of ``python -m
simulator``: ``--cfg`` print-outs (no generation), argparse's error, single runs and a
multirun whose database is unreachable (127.0.0.1:1, so each run fails with exit 4 after
writing its files), and a crashing job, which Hydra answers with its overrides and a
traceback.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from simulator.secrets import MaskedStream, hide_password, mask, parse_url

SECRET = "s3cret-Pw"
URL = f"db.url=postgresql+psycopg2://admin:{SECRET}@127.0.0.1:1/churn"
RAW = "Qz7xLq@Kx9vRt:Wv5pNs/Jm3kYd"               # a raw '@', ':' and '/': every piece must vanish
RAW_PIECES = ["Qz7xLq", "Kx9vRt", "Wv5pNs", "Jm3kYd"]   # (six characters: three bytes turn up by chance in
                                                      #   a compressed Parquet file, one in 16 million per place)
RAW_URL = f"db.url=postgresql+psycopg2://admin:{RAW}@127.0.0.1:1/churn"
COLON = "Kx9vRt:Wv5pNs/Jm3kYd"    # ':' and '/', which make_url reads right (the multirun's form)
COLON_URL = f"db.url=postgresql+psycopg2://admin:{COLON}@127.0.0.1:1/churn"
QUERY_SECRETS = ["Qs8pass", "Ss8pass"]
QUERY_URL = (f"db.url='postgresql+psycopg2://admin@127.0.0.1:1/churn?sslmode=disable"
             f"&password={QUERY_SECRETS[0]}&sslpassword={QUERY_SECRETS[1]}'")
QUERY_URL_CASED = QUERY_URL.replace("&password=", "&PassWord=").replace("&sslpassword=", "&SSLPASSWORD=")


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_PASSWORD")}
    return {**clean, "PYTHONPATH": str(ROOT), **extra}


def _simulator(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env or _env())


def _leaks(directory, proc, pieces=(SECRET,)) -> list[str]:
    """Every file, file or directory name, and stream of ``proc`` that holds a piece."""
    found = []
    for path in directory.rglob("*"):
        text = path.name + (path.read_bytes().decode(errors="replace") if path.is_file() else "")
        found += [f"{path}: {p}" for p in pieces if p in text]
    return found + [f"{name}: {p}" for name, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
                    for p in pieces if p in s]


# ----------------------------------------------------------------------------- the masking

MASKED = [  # (text, what it must become)
    ("postgresql+psycopg2://admin:p@ss:w/rd@host:5432/db", "postgresql+psycopg2://admin:***@host:5432/db"),
    (f"url: postgresql://admin:{SECRET}@h/db", "url: postgresql://admin:***@h/db"),
    ("postgresql://admin:p%40ss@h/db", "postgresql://admin:***@h/db"),
    ("postgresql://u:pw@host:abc/db", "postgresql://u:***@host:abc/db"),          # make_url refuses the port
    # Hydra's echo of a sweep job (escaped ':') and of a crashing job (a list's repr)
    ("#0 : db.url=postgresql+psycopg2\\://admin\\:p@ss\\:w/rd@127.0.0.1\\:1/churn seed=1",
     "#0 : db.url=postgresql+psycopg2\\://admin\\:***@127.0.0.1\\:1/churn seed=1"),
    ("overrides: ['db.url=postgresql\\\\://admin\\\\:p@w@h\\\\:1/c', 'seed=1']",
     "overrides: ['db.url=postgresql\\://admin\\:***@h\\\\:1/c', 'seed=1']"),
    ("override_dirname: db.url=pg\\://a\\:p\\,w@h/c,seed=1", "override_dirname: db.url=pg\\://a\\:***@h/c,seed=1"),
    # query parameters, any case, a '@' in the value
    ("postgresql://a@h/db?sslmode=require&SslPassword=x@y", "postgresql://a@h/db?sslmode=require&SslPassword=***"),
    ("postgresql://a@h/db?PASSWORD=x;sslpassword=y", "postgresql://a@h/db?PASSWORD=***;sslpassword=***"),
    ("db.url=pg\\://a@h/db?password\\=x z", "db.url=pg\\://a@h/db?password\\=*** z"),
    # the unresolved default of conf/db/postgres.yaml
    ('url: ${oc.env:DATABASE_URL,"postgresql://admin:${oc.env:POSTGRES_PASSWORD,devpassword}@localhost/db"}',
     'url: ${oc.env:DATABASE_URL,"postgresql://admin:***@localhost/db"}'),
    # no password: the text is left as it was
    ("sqlite:////tmp/a:b@c/world.sqlite", "sqlite:////tmp/a:b@c/world.sqlite"),
    ("http://example.com/x?y=1 and postgresql://admin@h/db", "http://example.com/x?y=1 and postgresql://admin@h/db"),
    ("time 12:30, ratio 1:2", "time 12:30, ratio 1:2"),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_mask_hides_every_form_and_leaves_other_text_alone(text, expected):
    assert mask(text) == expected


def test_a_raw_at_colon_or_slash_in_the_password_is_parsed_and_hidden():
    url = parse_url(f"postgresql+psycopg2://admin:{RAW}@db.example:5432/churn")
    assert (url.username, url.password, url.host, url.port, url.database) == ("admin", RAW, "db.example", 5432, "churn")
    assert parse_url("postgresql://admin:p%40ss@h/db").password == "p@ss"      # encoded: decoded once
    assert hide_password(f"postgresql://admin:{RAW}@h/db") == "postgresql://admin:***@h/db"


def test_a_masked_stream_hides_a_url_written_in_pieces():
    sink = io.StringIO()
    stream = MaskedStream(sink)
    print("db.url=postgresql://admin:", SECRET, "@h/db", sep="", file=stream)
    stream.write("tail postgresql://u:")
    stream.write(f"{SECRET}@h/db")
    stream.flush()
    assert SECRET not in sink.getvalue() and sink.getvalue().count("***") == 2


# ----------------------------------------------------------------------------- what Hydra prints

CFG = {  # (arguments, environment, pieces that must not appear)
    "job-userinfo-raw": (["--cfg", "job", "db=postgres", RAW_URL], {}, RAW_PIECES),
    "job-resolve-POSTGRES_PASSWORD": (["--cfg", "job", "--resolve", "db=postgres"], {"POSTGRES_PASSWORD": SECRET}, [SECRET]),
    "job-resolve-DATABASE_URL": (["--cfg", "job", "--resolve", "db=postgres"],
                                 {"DATABASE_URL": f"postgresql://admin:{RAW}@127.0.0.1:1/churn"}, RAW_PIECES),
    "hydra-query": (["--cfg", "hydra", "db=postgres", QUERY_URL_CASED], {}, QUERY_SECRETS),
    "all-resolve-userinfo": (["--cfg", "all", "--resolve", "db=postgres", URL], {}, [SECRET]),
    "argparse-error": (["db=postgres", "--no-such-flag", URL], {}, [SECRET]),
}


@pytest.mark.parametrize("case", list(CFG))
def test_cfg_and_argparse_print_no_password(tmp_path, case):
    args, env, pieces = CFG[case]
    proc = _simulator(*args, env=_env(**env))
    assert proc.returncode == (2 if case == "argparse-error" else 0), proc.stderr
    assert "***" in (proc.stdout if proc.returncode == 0 else proc.stderr)
    assert not _leaks(tmp_path, proc, pieces)


# ----------------------------------------------------------------------------- real runs

FORMS = {  # (overrides, environment, pieces)
    "userinfo": ([URL, "output.report=true"], {}, [SECRET]),
    "raw-at": ([RAW_URL], {}, RAW_PIECES),
    "query-string": ([QUERY_URL], {}, QUERY_SECRETS),
    "environment": ([], {"DATABASE_URL": f"postgresql+psycopg2://admin:{SECRET}@127.0.0.1:1/churn"}, [SECRET]),
    "password-variable": ([], {"POSTGRES_PASSWORD": SECRET}, [SECRET]),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_single_run_keeps_the_password_out_of_every_file_and_line(tmp_path, form):
    """Every form, each run failing after its files are written: every file and directory
    of the run (manifest, .hydra/*.yaml, logs, report) and both streams are clean."""
    args, env, pieces = FORMS[form]
    out = tmp_path / "run"
    proc = _simulator(f"hydra.run.dir={out}", "n_partners=1000", "output.report=false", "db=postgres", *args,
                      env=_env(**env))
    assert proc.returncode == 4 and "cannot connect" in proc.stderr, proc.stderr
    if form == "userinfo":
        assert (out / "report.html").exists()
    leaks = _leaks(tmp_path, proc, pieces)
    assert not leaks, leaks


def test_a_crashing_job_echoes_its_overrides_without_the_password(tmp_path):
    """An unexpected error in a job: Hydra writes "Error executing job with overrides: [...]"
    and a traceback to stderr itself; the masked streams hide the URL there."""
    crash = ("import sys, simulator.run, simulator.__main__ as m\n"
             "def boom(*a, **k): raise RuntimeError('boom')\n"
             "simulator.run.run = boom\n"
             "sys.argv = ['simulator', *sys.argv[1:]]\n"
             "m.main()")
    proc = subprocess.run([sys.executable, "-c", crash, f"hydra.run.dir={tmp_path / 'run'}", "db=postgres", COLON_URL],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=_env())
    assert proc.returncode == 1 and "Error executing job with overrides" in proc.stderr, proc.stderr
    assert "admin:***@127.0.0.1" in proc.stderr
    leaks = _leaks(tmp_path, proc, RAW_PIECES)
    assert not leaks, leaks


def test_a_multirun_keeps_the_password_out_of_every_file_line_and_directory_name(tmp_path):
    """The launcher's lines and the summary (overrides escaped by Hydra), multirun.yaml,
    each job's .hydra/, and job directories named by ${hydra.job.override_dirname}."""
    sweep = tmp_path / "sweep"
    proc = _simulator("-m", "seed=1,2", "n_partners=1000", "output.report=false", "db=postgres", COLON_URL,
                      f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.override_dirname}")
    assert proc.returncode == 4, proc.stderr           # both jobs ran and failed to load
    assert (sweep / "multirun.yaml").is_file() and (sweep / "sweep_summary.csv").read_text().count("cannot connect") == 2
    assert proc.stdout.count("***") >= 2                    # the launcher's line for each job, masked
    leaks = _leaks(tmp_path, proc, RAW_PIECES)
    assert not leaks, leaks


def test_a_url_with_a_port_that_is_not_a_number_is_refused_masked():
    """evaluate --from-db --db-url with a bad port was a traceback: now the sink's error
    (exit 2 there), the URL masked."""
    from simulator.sinks.base import SinkError
    from simulator.sinks.postgres import connect

    with pytest.raises(SinkError, match="not a PostgreSQL URL like") as exc:
        connect("postgresql://user:s3cretPW@127.0.0.1:notaport/nodb")
    assert "s3cretPW" not in str(exc.value) and "notaport" in str(exc.value)
