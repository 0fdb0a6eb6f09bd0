"""Sinks benchmark (issue "The run's edges"): a run's files and its database load, this
checkout beside another one (``--base DIR``: e.g. a worktree of the commit before a change)
and the yardstick, in one invocation, each with wall time and the peak memory of all its
processes together (benchmarks/peak.py).

For ``--n`` partners (default 1M), alternately for each checkout (so that a busier moment
of a shared machine falls on both alike), ``--repeat`` times each:
  * files only: the default world, CSV + Parquet, ``db=none``, no report;
  * the SQLite load: the same with ``db=sqlite`` (the default);
  * DuckDB (this checkout only, when it has the kind): ``db=duckdb``.
Prints a Markdown table with the median of each and its ratio to the yardstick.

usage: [YARDSTICKS=DIR] python benchmarks/sinks.py --base ../wt-base [--n 1000000] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("YARDSTICKS", Path(__file__).resolve().parent / "yardstick"))   # the copy in the repo
COMMON = ["output.report=false"]
CASES = {"files only (db=none)": ["db=none"], "files + SQLite load": ["db=sqlite"], "files + DuckDB load": ["db=duckdb"]}


def run(checkout: Path, out: Path, n: int, overrides: list[str]) -> tuple[float, float]:
    wall, peak, _ = measure([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", f"n_partners={n}",
                             *COMMON, *overrides], cwd=str(checkout), env={"PYTHONPATH": str(checkout)})
    if not (out / "manifest.json").exists():
        raise SystemExit(f"the run in {checkout} with {overrides} failed")
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (e.g. the commit before)")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if not (BENCH / "reference_vectorized.py").is_file():
        sys.exit(f"the yardstick {BENCH / 'reference_vectorized.py'} is not there: set YARDSTICKS")
    checkouts = {"before": args.base.resolve(), "after": ROOT}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="sinks-bench-") as tmp:
        tmp = Path(tmp)
        y_wall, y_peak, _ = measure([sys.executable, str(BENCH / "reference_vectorized.py"), str(args.n),
                                     str(tmp / "yard"), "--csv-engine", "pyarrow", "--formats", "csv,parquet"])
        for i in range(args.repeat):
            for case, overrides in CASES.items():
                for label, checkout in checkouts.items():
                    if "db=duckdb" in overrides and not (checkout / "conf" / "db" / "duckdb.yaml").exists():
                        continue
                    out = tmp / f"{label}-{i}-{len(times)}"
                    times.setdefault((case, label), []).append(run(checkout, out, args.n, overrides))
    print(f"| run ({args.n:,} partners, histories, CSV + Parquet, no report) | checkout | seconds | "
          f"peak MiB (all processes) | x the yardstick |")
    print("|---|---|---|---|---|")
    print(f"| yardstick reference_vectorized.py (pyarrow CSV + Parquet) | | {y_wall:.2f} | {y_peak:,.0f} | 1.00 |")
    for (case, label), runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        peak = statistics.median(p for _, p in runs)
        print(f"| {case} | {label} | {wall:.2f} | {peak:,.0f} | {wall / y_wall:.2f} |")


if __name__ == "__main__":
    main()
