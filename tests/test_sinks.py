"""Sinks as plug-in kinds: a toy sink added as one module, one registry line and YAML; the
DuckDB sink on a real file; a column that would round values refused; one run per
directory; the run's config published with its tables."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from simulator import compose, sinks
from simulator.run import run
from simulator.sinks import publication

TOY = '''
"""A toy sink: each block's row counts as JSON lines in toy.jsonl, renamed into place on commit."""
import json
import os
from pathlib import Path

name = "toy"
shape = {"kind": None, "path": None}


def parse(p, config):
    from simulator.spec import DbSpec

    return DbSpec(name, config.get("path", "toy.jsonl"))


def sink(ctx):
    return ToySink(ctx)


class ToySink:
    kind, staged = name, False

    def __init__(self, ctx):
        self.path = ctx.out_dir / ctx.db.target
        self.partial = self.path.with_name("." + self.path.name + ".partial")
        self.rows = {}

    def open(self, first):
        self.fh = open(self.partial, "w")

    def write(self, block):
        for table in block.names:
            n = block.table(table).num_rows
            self.rows[table] = self.rows.get(table, 0) + n
            self.fh.write(json.dumps({"block": block.index, "table": table, "rows": n}) + "\\n")

    def commit(self):
        self.fh.close()
        os.replace(self.partial, self.path)
        return self.rows

    def abort(self):
        self.partial.unlink(missing_ok=True)

    def describe(self):
        return f"toy {self.path.name}"

    def outputs(self):
        return [self.path]
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy kind: one module, one registry line, one YAML file."""
    (tmp_path / "toy_sink.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_sink")
    sinks.register(module)                                        # the registry line
    conf = tmp_path / "conf" / "db"
    conf.mkdir(parents=True)
    (conf / "toy.yaml").write_text("kind: toy\npath: toy.jsonl\n")   # the YAML
    yield tmp_path / "conf"
    sinks.SINK_KINDS.pop("toy")
    sys.modules.pop("toy_sink")


def test_a_toy_sink_is_one_module_one_registry_line_and_yaml(toy, tmp_path):
    out = tmp_path / "run"
    report = run(compose(["db=toy", "n_partners=1500", "block_size=1024", "output.report=false",
                          "activity.write=false"], user_conf=str(toy)), out)
    lines = [json.loads(line) for line in (out / "toy.jsonl").read_text().splitlines()]
    assert {line["block"] for line in lines} == {0, 1}                   # every block, in order
    got = pd.DataFrame(lines).groupby("table")["rows"].sum().to_dict()
    assert got == {name: n for name, n in report.rows.items()}           # every row of every table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["database"]["target"] == "toy toy.jsonl" and manifest["database"]["rows"] == got
    assert "toy.jsonl" in manifest["outputs"] and report.database == "toy toy.jsonl"


@pytest.mark.slow
def test_the_duckdb_sink_loads_every_table_and_the_empty_predictions(tmp_path):
    out = tmp_path / "run"
    run_cli("n_partners=1500", "db=duckdb", out_dir=out)
    con = duckdb.connect(str(out / "world.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == {"partners", "network_relationships", "interventions", "uplift_truth", "partners_engineered",
                      "decision_truth", "snapshot_truth", "features_panel", "predictions"}
    for table in tables - {"predictions"}:
        files = pd.read_parquet(out / f"{table}.parquet")
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == len(files), table
    assert con.execute("SELECT count(*) FROM predictions").fetchall()[0][0] == 0
    row = con.execute("SELECT tier, avg_commission_3m, churn_label, churn_scenario FROM partners "
                      "WHERE partner_id = 'P00001'").fetchall()[0]
    assert (row[0], float(row[1]), row[2], row[3]) == ("Platinum", 5100.0, True, "Tier_Cliff_Anxiety")
    fks = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'").fetchall()
    assert fks[0][0] >= 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert "world.duckdb" in manifest["outputs"] and manifest["database"]["error"] is None
    con.close()
    run_cli("n_partners=1200", "seed=3", "db=duckdb", out_dir=out)     # a re-run replaces, not appends
    con = duckdb.connect(str(out / "world.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM partners").fetchall()[0][0] == 1200
    assert not list(out.glob(".world.duckdb*"))


def test_an_existing_integer_column_is_refused_before_loading(tmp_path):
    """A column of an existing database whose type would round fractional values (an
    integer, a DECIMAL of scale 0) refuses the load: exit 4 with table.column, no row in."""
    out = tmp_path / "run"
    out.mkdir()
    con = duckdb.connect(str(out / "world.duckdb"))
    con.execute("CREATE TABLE partners (partner_id VARCHAR(50) PRIMARY KEY, avg_commission_3m DECIMAL(12,0), "
                "tier_proximity_score INTEGER)")
    con.close()
    proc = run_cli("n_partners=1000", "db=duckdb", "db.mode=append", out_dir=out, check=False)
    assert proc.returncode == 4, proc.stderr
    assert "partners.avg_commission_3m (DECIMAL(12,0), scale 0)" in proc.stderr
    assert "partners.tier_proximity_score (INTEGER" in proc.stderr and "Traceback" not in proc.stderr
    con = duckdb.connect(str(out / "world.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM partners").fetchall()[0][0] == 0
    assert (out / "partners.csv").exists()                           # the files are complete


def test_a_second_run_into_a_busy_directory_is_refused_at_once(tmp_path):
    out = tmp_path / "run"
    with publication.lock(out):                                      # a run in progress: this process
        proc = run_cli("n_partners=1000", out_dir=out, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"is in use by another run (pid {os.getpid()} on" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (out / "manifest.json").exists()
    assert not list(out.glob(".partial-*"))


def test_the_lock_of_a_dead_run_is_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                             "from simulator.sinks.publication import lock\n"
                             "with lock(Path(sys.argv[1])): import os; os._exit(0)", str(out)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.returncode == 0 and "pid" in (out / publication.LOCK).read_text()   # killed: its note stays
    run(compose(["n_partners=1000", "db=none", "output.report=false", "activity.write=false"]), out)
    assert (out / "manifest.json").exists() and not (out / publication.LOCK).exists()


def test_a_refused_run_leaves_the_published_config_untouched(tmp_path):
    out = tmp_path / "run"
    run_cli("n_partners=1000", "seed=5", "db=none", out_dir=out)
    before = (out / ".hydra" / "config.yaml").read_bytes()
    assert b"seed: 5" in before and (out / ".hydra").is_symlink()
    proc = run_cli("n_partners=1000", "seed=6", "churn.target_rate=2", out_dir=out, check=False)
    assert proc.returncode == 2
    assert (out / ".hydra" / "config.yaml").read_bytes() == before
    assert json.loads((out / "manifest.json").read_text())["seed"] == 5


@pytest.mark.parametrize("path", ["../outside.sqlite", "/tmp/elsewhere.sqlite", "a/b.sqlite", ""])
def test_a_database_file_outside_the_run_directory_is_refused(path):
    from simulator.errors import ConfigError
    from simulator.load import load_spec

    with pytest.raises(ConfigError, match="db.path: must be a file name inside the run directory"):
        load_spec(compose(["db=sqlite", f"db.path='{path}'"]))


@pytest.mark.slow
def test_two_runs_into_one_directory_at_once(tmp_path):
    """The second run into a directory where the first is generating is refused at once,
    naming the first's pid; the first finishes and is the run that is published (the issue
    saw a shared partial database, a traceback, and the wrong run published, 3 times of 3).
    The second waits, its imports done, until the first holds the lock, so that it starts
    within a fraction of a second of it whatever the machine's load."""
    import time

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    second = subprocess.Popen([sys.executable, "-c", "import sys; import simulator.run; from simulator.__main__ import main\n"
                               "sys.stdin.readline(); main()",
                               f"hydra.run.dir={out}", "n_partners=1000", "seed=2"],
                              cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    first = subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", "n_partners=20000",
                              "seed=1", "output.report=false"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / publication.LOCK).exists() and time.time() < deadline:    # the first holds the lock
        time.sleep(0.01)
    _, second_err = second.communicate("go\n", timeout=300)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2 and f"in use by another run (pid {first.pid} on" in second_err, second_err
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1
    assert "seed: 1\n" in (out / ".hydra" / "config.yaml").read_text()
