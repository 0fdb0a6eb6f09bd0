"""Databases: the seed's SQL on a real PostgreSQL 15, COPY loads, one transaction, SQLite."""
from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg2
import pytest

from conftest import ROOT, run_cli
from simulator.schemas import table_schemas
from simulator import sinks
from simulator.sinks.sql import ddl_files, names, table_of
from simulator.sinks.sqlite import sqlite_ddl
from simulator.load import load_spec

SEED_INDEXES = {"idx_partners_churn", "idx_partners_region", "idx_predictions_partner",
                "idx_network_master", "idx_network_sub"}
TABLES = ["partners", "network_relationships", "interventions", "uplift_truth"]


def _connect(url: str):
    m = re.match(r"postgresql\+psycopg2://(\w+):([^@]*)@([\d.]+):(\d+)/(\w+)", url)
    user, password, host, port, db = m.groups()
    return psycopg2.connect(host=host, port=int(port), user=user, password=password, dbname=db)


def _query(url, sql, *args):
    with _connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@pytest.fixture(scope="module")
def loaded(postgres_url, tmp_path_factory):
    out = tmp_path_factory.mktemp("pg_run")
    proc = run_cli("n_partners=10000", "db=postgres", f"db.url={postgres_url}", out_dir=out)
    return out, proc


def test_tables_exist_like_psql_dt(loaded, postgres_url):
    names = {r[0] for r in _query(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"partners", "interventions", "predictions", "network_relationships", "uplift_truth"} <= names


def test_row_counts_equal_the_files(loaded, postgres_url):
    out, _ = loaded
    for table in TABLES:
        (count,) = _query(postgres_url, f"SELECT count(*) FROM {table}")[0]
        assert count == len(pd.read_csv(out / f"{table}.csv")), table
    assert _query(postgres_url, "SELECT count(*) FROM predictions")[0][0] == 0


def test_foreign_keys_and_indexes_exist(loaded, postgres_url):
    indexes = {r[0] for r in _query(postgres_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert SEED_INDEXES <= indexes
    fks = _query(postgres_url, """
        SELECT tc.table_name, kcu.column_name, ccu.table_name FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name
        JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name
        WHERE tc.constraint_type = 'FOREIGN KEY'""")
    assert {(t, c) for t, c, parent in fks if parent == "partners"} >= {
        ("network_relationships", "master_affiliate_id"), ("network_relationships", "sub_affiliate_id"),
        ("interventions", "partner_id"), ("predictions", "partner_id"), ("uplift_truth", "partner_id")}


def test_tier_cliff_golden_record(loaded, postgres_url):
    rows = _query(postgres_url, "SELECT tier, avg_commission_3m, tier_proximity_score, login_trend_30d, "
                                "churn_label, churn_scenario FROM partners WHERE partner_id = 'P00001'")
    tier, commission, proximity, trend, label, scenario = rows[0]
    assert (tier, float(commission), float(proximity), float(trend), label, scenario) == \
        ("Platinum", 5100.0, 0.02, -0.4, True, "Tier_Cliff_Anxiety")


def test_the_password_never_appears(loaded):
    out, proc = loaded
    assert "secret-pw" not in proc.stdout + proc.stderr
    for path in [out / "manifest.json", *(out / ".hydra").iterdir()]:
        assert "secret-pw" not in path.read_text(), path
    assert "postgres:***@" in (out / ".hydra" / "overrides.yaml").read_text()


def test_second_load_replaces_not_duplicates(loaded, postgres_url, tmp_path):
    before = _query(postgres_url, "SELECT count(*) FROM interventions")[0][0]
    run_cli("n_partners=10000", "db=postgres", f"db.url={postgres_url}", out_dir=tmp_path)
    assert _query(postgres_url, "SELECT count(*) FROM interventions")[0][0] == before
    assert _query(postgres_url, "SELECT count(*) FROM partners")[0][0] == 10000


def test_a_new_intervention_type_gets_its_column(postgres_url, tmp_path):
    run_cli("n_partners=1500", "db=postgres", f"db.url={postgres_url}",
            "interventions.mix.none=0.3", "+interventions.mix.sms=0.1",
            "+interventions.effects.sms=[{effect: -0.05}]", out_dir=tmp_path)
    cols = {r[0] for r in _query(postgres_url, "SELECT column_name FROM information_schema.columns "
                                               "WHERE table_name = 'uplift_truth'")}
    assert {"effect_sms", "declared_effect_sms"} <= cols
    declared = _query(postgres_url, "SELECT count(*) FROM uplift_truth WHERE declared_effect_sms = -0.05")[0][0]
    assert declared == _query(postgres_url, "SELECT count(*) FROM uplift_truth")[0][0] > 1000


def test_a_failed_load_leaves_the_database_as_it_was(postgres_url, tmp_path):
    run_cli("n_partners=1500", "db=postgres", f"db.url={postgres_url}", out_dir=tmp_path / "ok")
    # a world whose tier proximity overflows the seed's DECIMAL(5,4): COPY fails mid-load
    proc = run_cli("n_partners=800", "db=postgres", f"db.url={postgres_url}", "population.tiers.Bronze=1",
                   out_dir=tmp_path / "bad", check=False)
    assert proc.returncode == 4 and "rolled back" in proc.stderr and "Traceback" not in proc.stderr
    assert _query(postgres_url, "SELECT count(*) FROM partners")[0][0] == 1500
    assert (tmp_path / "bad" / "partners.csv").exists()      # the files stay valid


def test_a_killed_load_leaves_nothing_partial(postgres_url, tmp_path):
    run_cli("n_partners=1500", "db=postgres", f"db.url={postgres_url}", out_dir=tmp_path / "ok")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={tmp_path / 'big'}",
                             "n_partners=200000", "db=postgres", f"db.url={postgres_url}",
                             "activity.write=false", "output.report=false"],   # straight to the load
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:              # wait until the COPY is under way, then kill
        busy = _query(postgres_url, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%%'")[0][0]
        if busy:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    assert busy, "the load never reached COPY"
    assert _query(postgres_url, "SELECT count(*) FROM partners")[0][0] == 1500
    assert _query(postgres_url, "SELECT count(*) FROM interventions WHERE partner_id = 'P100000'")[0][0] == 0


def test_unreachable_server_is_a_clear_one_line_error(tmp_path):
    proc = run_cli("n_partners=1000", "db=postgres", "db.url=postgresql+psycopg2://admin:hunter2@127.0.0.1:1/deriv_churn",
                   out_dir=tmp_path, check=False)
    assert proc.returncode == 4
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error: cannot connect to PostgreSQL at 127.0.0.1:1, database deriv_churn as admin")
    assert "hunter2" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert (tmp_path / "partners.csv").exists() and (tmp_path / "manifest.json").exists()


def test_sqlite_default_has_the_same_tables_and_counts(default_run):
    conn = sqlite3.connect(default_run.dir / "world.sqlite")
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(TABLES) | {"predictions"} <= names
    for table in TABLES:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert count == len(default_run.csv(table))
    row = conn.execute("SELECT tier, tier_proximity_score, churn_scenario FROM partners "
                       "WHERE partner_id = 'P00001'").fetchone()
    assert row == ("Platinum", 0.02, "Tier_Cliff_Anxiety")


def test_db_none_writes_files_only(tmp_path):
    run_cli("n_partners=1000", "db=none", out_dir=tmp_path)
    assert not (tmp_path / "world.sqlite").exists() and (tmp_path / "partners.csv").exists()


# ----------------------------------------------------------------------------- one source of truth

SQL_FAMILY = {"float64": {"numeric", "double precision"}, "int64": {"integer", "bigint"},
              "Int64": {"integer", "bigint"}, "bool": {"boolean"}, "datetime64[us]": {"timestamp without time zone"},
              "datetime64[ns]": {"timestamp without time zone"},
              "str": {"character varying", "uuid", "text"}, "string[pyarrow]": {"character varying", "uuid", "text"},
              "category": {"character varying", "text"}}


def test_sql_pandera_and_frames_agree(postgres_url, compose, loaded):
    """Every column of every pandera schema is a column of its SQL table with a compatible type,
    and the written frames have exactly the schema's columns."""
    from simulator.engine import simulate

    spec = load_spec(compose(["n_partners=1500", "activity.write=false"]))
    tables = simulate(spec).tables
    p = tables["partners"]
    schemas = {name: s for name, s in table_schemas(spec, tables).items() if name in TABLES}
    for name, schema in schemas.items():
        sql = dict(_query(postgres_url, "SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_name = %s", name))
        assert list(tables[name].columns) == list(schema.columns), name
        for col, column in schema.columns.items():
            assert col in sql, f"{name}.{col} is not in schema/{name}.sql"
            assert sql[col] in SQL_FAMILY[str(column.dtype)], f"{name}.{col}: {column.dtype} vs {sql[col]}"


def test_every_sql_file_is_included_once_in_dependency_order():
    files = ddl_files()
    assert sorted(f.name for f in files) == sorted(p.name for p in (ROOT / "schema").glob("*.sql")
                                                  if p.name != "00_init.sql")
    assert [table_of(f) for f in files][0] == "partners"


def test_sqlite_translation_runs():
    conn = sqlite3.connect(":memory:")
    for f in ddl_files():
        conn.executescript(sqlite_ddl(f.read_text()))
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'index'").fetchone()[0] >= 5


def test_sqlite_statements_split_outside_comments():
    """The loader splits DDL at ';': a ';' inside a comment must not cut a statement."""
    sql = "-- parents first; then children\nCREATE TABLE t (a INTEGER); -- one; two\nCREATE INDEX i ON t(a);"
    statements = [st for st in sqlite_ddl(sql).split(";") if st.strip()]
    assert len(statements) == 2 and statements[0].strip().startswith("CREATE TABLE")


def test_docker_compose_is_valid_compose_spec():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    proc = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "docker-compose.yml").read_text()
    for needle in ("postgres:15", "POSTGRES_USER: admin", "POSTGRES_DB: deriv_churn", '"5432:5432"',
                   "./schema:/docker-entrypoint-initdb.d", "healthcheck", "pgdata:"):
        assert needle in text


def test_sqlite_failed_load_changes_nothing(tmp_path, compose):
    from simulator.engine import simulate
    from simulator.spec import DbSpec

    spec = load_spec(compose(["n_partners=1000", "activity.write=false"]))
    tables = simulate(spec).tables
    db = DbSpec("sqlite", "w.sqlite", "replace")
    sinks.load(db, tables, tmp_path)
    broken = tables["interventions"].copy()
    broken.loc[0, "partner_id"] = "P99999"                   # no such partner
    with pytest.raises(sinks.SinkError, match="foreign key"):
        sinks.load(db, {**tables, "interventions": broken, "partners": tables["partners"].iloc[:200]}, tmp_path)
    conn = sqlite3.connect(tmp_path / "w.sqlite")
    assert conn.execute("SELECT count(*) FROM partners").fetchone()[0] == 1000
    assert [p.name for p in tmp_path.iterdir()] == ["w.sqlite"]   # no partial file left


def test_wrong_credentials_are_a_clear_one_line_error(postgres_url, tmp_path):
    wrong = postgres_url.replace(":secret-pw@", ":not-the-password@")
    proc = run_cli("n_partners=1000", "db=postgres", f"db.url={wrong}", out_dir=tmp_path, check=False)
    assert proc.returncode == 4
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error: cannot connect to PostgreSQL at 127.0.0.1:") and "database deriv_churn" in first
    assert "password authentication failed" in first
    assert "not-the-password" not in proc.stderr + proc.stdout + (tmp_path / "manifest.json").read_text()


def test_postgres_foreign_keys_are_checked_after_copy(postgres_url, compose):
    """The loader drops and restores foreign keys around COPY: a broken reference still fails
    the whole load, and the constraints are back afterwards."""
    from simulator.engine import simulate
    from simulator.spec import DbSpec

    spec = load_spec(compose(["n_partners=1000", "activity.write=false"]))
    tables = simulate(spec).tables
    db = DbSpec("postgres", postgres_url, "replace")
    sinks.load(db, tables, Path("."))
    broken = tables["interventions"].copy()
    broken.loc[0, "partner_id"] = "P99999"
    with pytest.raises(sinks.SinkError, match="rolled back"):
        sinks.load(db, {**tables, "interventions": broken}, Path("."))
    assert _query(postgres_url, "SELECT count(*) FROM partners")[0][0] == 1000
    names = {r[0] for r in _query(postgres_url, "SELECT conname FROM pg_constraint WHERE contype = 'f'")}
    assert {"fk_master", "fk_sub"} <= names


def test_sqlite_replace_empties_tables_this_world_does_not_write(tmp_path, compose):
    from simulator.engine import simulate
    from simulator.spec import DbSpec

    db = DbSpec("sqlite", "w.sqlite", "replace")
    spec = load_spec(compose(["n_partners=1200", "activity.write=false"]))
    sinks.load(db, simulate(spec).tables, tmp_path)
    smaller = load_spec(compose(["n_partners=1000", "seed=9", "interventions=none", "activity.write=false"]))
    sinks.load(db, simulate(smaller).tables, tmp_path)
    conn = sqlite3.connect(tmp_path / "w.sqlite")
    assert conn.execute("SELECT count(*) FROM partners").fetchone()[0] == 1000
    assert conn.execute("SELECT count(*) FROM interventions").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM uplift_truth").fetchone()[0] == 0


def test_the_arrow_and_the_row_loaders_write_the_same_sqlite(compose, tmp_path, monkeypatch):
    """ADBC's SQLite driver (Arrow ingest) and the standard library's sqlite3 (rows as
    tuples) store the same values in every table, text timestamps and labels included."""
    import builtins

    from simulator import generate
    from simulator.sinks import sqlite

    cfg = compose(["n_partners=1500"])
    spec = load_spec(cfg)
    tables = {n: t for n, t in generate(cfg).items() if n not in spec.files_only}
    session = sqlite.Session(tmp_path / "probe.sqlite", fresh=True)
    assert session.adbc                         # a dependency: the fast path is the default
    session.close()
    contents = {}
    for loader in ("adbc", "sqlite3"):
        if loader == "sqlite3":
            real = builtins.__import__

            def without_adbc(name, *args, **kwargs):
                if name.startswith("adbc_driver"):
                    raise ImportError(name)
                return real(name, *args, **kwargs)

            monkeypatch.setattr(builtins, "__import__", without_adbc)
        out = tmp_path / loader
        out.mkdir()
        sinks.load(spec.db, tables, out, names(spec))
        with sqlite3.connect(out / "world.sqlite") as conn:
            contents[loader] = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}
    assert contents["adbc"] == contents["sqlite3"]
    assert contents["adbc"]["partners"][0][0] == "P00001"


@pytest.mark.slow
def test_an_existing_numeric_scale_0_column_is_refused_before_loading(postgres_url, tmp_path):
    """An existing PostgreSQL column NUMERIC(12,0) for commissions would silently round
    every fractional commission: exit 4 naming partners.avg_commission_3m, the database as
    it was (the issue saw 981 commissions rounded, exit 0)."""
    run_cli("n_partners=1500", "db=postgres", f"db.url={postgres_url}", out_dir=tmp_path / "ok")
    with _connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE partners CASCADE")
        cur.execute("ALTER TABLE partners ALTER COLUMN avg_commission_3m TYPE NUMERIC(12,0)")
    try:
        proc = run_cli("n_partners=1000", "db=postgres", f"db.url={postgres_url}", out_dir=tmp_path / "run",
                       check=False)
        assert proc.returncode == 4, proc.stderr
        assert "partners.avg_commission_3m (numeric, scale 0) would round fractional values" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert _query(postgres_url, "SELECT count(*) FROM partners")[0][0] == 0
    finally:
        with _connect(postgres_url) as conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE partners ALTER COLUMN avg_commission_3m TYPE DECIMAL(10,2)")
