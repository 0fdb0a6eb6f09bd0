"""Database load throughput beside `psql \\copy` of the same CSV into the same table.

Generates a world (files only), starts a throwaway PostgreSQL 15, applies schema/, then for
the partners table: `psql -c "\\copy partners FROM partners.csv CSV HEADER"` (the floor)
and the simulator's loader (DDL + TRUNCATE + COPY in one transaction), each after emptying
the table, each best of --repeat; then every table streamed through the loader in 16
blocks (as a run loads them, one transaction), and the same into SQLite. Prints rows/s.

usage: python benchmarks/bench_db.py [--n 1000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from simulator import compose, pgserver  # noqa: E402
from simulator import sinks  # noqa: E402
from simulator.sinks import Block, SinkContext  # noqa: E402
from simulator.load import load_spec  # noqa: E402
from simulator.spec import DbSpec  # noqa: E402


def streamed(db, tables, out, domains=None, parts: int = 16) -> None:
    """The run's way: one transaction, each table written in ``parts`` blocks, then commit."""
    sink = sinks.kind(db).sink(SinkContext(db, out, {}))
    blocks = [Block(i, {name: t.iloc[i * -(-len(t) // parts):(i + 1) * -(-len(t) // parts)]
                        for name, t in tables.items()}) for i in range(parts)]
    sink.open(blocks[0])
    for block in blocks:
        sink.write(block)
    sink.commit()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "simulator", f"n_partners={args.n}", "db=none",
                        f"hydra.run.dir={out}"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        tables = {name: pd.read_parquet(out / f"{name}.parquet")
                  for name in ("partners", "network_relationships", "interventions", "uplift_truth",
                               "partners_engineered")}
        csvs = {name: out / f"{name}.csv" for name in tables}
        spec = load_spec(compose([f"n_partners={args.n}"]))
        domains = spec.domains()
        n = len(tables["partners"])
        rows_all = sum(len(t) for t in tables.values())
        with pgserver.server() as url:
            db = DbSpec("postgres", url, "replace")
            sinks.load(db, {"partners": tables["partners"]}, out)   # schema + warm-up
            port = url.rsplit(":", 1)[1].split("/")[0]
            psql = [shutil.which("psql") or str(pgserver.bindir() / "psql"), "-h", "127.0.0.1", "-p", port, "-U", "postgres",
                    "-d", "deriv_churn", "-q", "-v", "ON_ERROR_STOP=1"]
            os.environ["PGPASSWORD"] = "devpassword"           # pgserver.server's default
            columns = ",".join(tables["partners"].columns)

            def psql_copy():
                subprocess.run([*psql, "-c", "TRUNCATE partners CASCADE"], check=True)
                subprocess.run([*psql, "-c", f"\\copy partners ({columns}) FROM '{csvs['partners']}' CSV HEADER"],
                               check=True)

            t_psql = best(psql_copy, args.repeat)
            t_ours = best(lambda: sinks.load(db, {"partners": tables["partners"]}, out),
                          args.repeat)
            t_streamed = best(lambda: streamed(db, {"partners": tables["partners"]}, out, domains), args.repeat)
            t_all = best(lambda: streamed(db, tables, out, domains), 1)
        sqlite = DbSpec("sqlite", str(Path(tmp) / "bench.sqlite"), "replace")
        t_sqlite = best(lambda: sinks.load(sqlite, {"partners": tables["partners"]}, out), 1)
        t_sqlite_all = best(lambda: streamed(sqlite, tables, out, domains), 1)
    print(f"partners rows: {n:,}; all tables: {rows_all:,} rows")
    print("| load | seconds | rows/s | vs psql \\copy |")
    print("|---|---|---|---|")
    print(f"| psql \\copy partners (floor) | {t_psql:.2f} | {n / t_psql:,.0f} | 1.00 |")
    print(f"| simulator -> PostgreSQL, partners | {t_ours:.2f} | {n / t_ours:,.0f} | {t_psql / t_ours:.2f} |")
    print(f"| simulator -> PostgreSQL, partners, 16 blocks | {t_streamed:.2f} | {n / t_streamed:,.0f} | {t_psql / t_streamed:.2f} |")
    print(f"| simulator -> PostgreSQL, all 5 tables, 16 blocks | {t_all:.2f} | {rows_all / t_all:,.0f} | - |")
    print(f"| simulator -> SQLite, partners | {t_sqlite:.2f} | {n / t_sqlite:,.0f} | - |")
    print(f"| simulator -> SQLite, all 5 tables, 16 blocks | {t_sqlite_all:.2f} | {rows_all / t_sqlite_all:,.0f} | - |")


if __name__ == "__main__":
    main()
