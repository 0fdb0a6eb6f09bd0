"""Benchmark the generator beside the yardsticks in benchmarks/yardstick/ (copies of the team's
shared/bench; YARDSTICKS=DIR reads them elsewhere), in one invocation.

For each size: the simulator's whole process writing the same kind of output as the
yardstick (`python -m simulator db=none output.report=false activity.write=false`:
partners, network, interventions, uplift truth and partners_engineered as CSV + Parquet,
the 18 features computed from histories that are reduced, not written), the same with stats.json and
report.html (the report's share of the run), the default run (SQLite load + report) up
to 100k, its generation time alone, and the yardsticks run side by side (reference_vectorized.py with
pyarrow CSV; seed_reference.py where it finishes in reasonable time). Prints rows/s, peak
memory (max RSS of the process) and ratios; absolute times drift on shared machines.

usage: [YARDSTICKS=DIR] python benchmarks/bench_core.py [--sizes 10000,100000,1000000] [--seed-ref-max 100000] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("YARDSTICKS", Path(__file__).resolve().parent / "yardstick"))   # the copy in the repo


REPEAT = 1


def timed(cmd: list[str]) -> tuple[float, float]:
    """(best wall seconds of REPEAT runs, peak RSS in MiB) of a child process."""
    runs = [_timed_once(cmd) for _ in range(REPEAT)]
    return min(w for w, _ in runs), max(p for _, p in runs)


def _timed_once(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    wall = time.perf_counter() - start
    # ru_maxrss of children is the max over all children so far; run the big ones last
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def generation_seconds(n: int, overrides: list[str]) -> float:
    """Generation alone (start-up, validation and writing excluded), block by block as a
    run generates (executor=local), best of 3 in-process."""
    code = ("import time; from simulator import compose; from simulator.load import load_spec; "
            "from simulator.executors import blocks; s = load_spec(compose(%r)); "
            "simulate = lambda s: [None for _ in blocks(s)]; simulate(s); ts = []\n"
            "for _ in range(3):\n t = time.perf_counter(); simulate(s); ts.append(time.perf_counter() - t)\n"
            "print(min(ts))") % [f"n_partners={n}", *overrides]
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if not (BENCH / "reference_vectorized.py").is_file():
        sys.exit(f"yardsticks not found in {BENCH}: set YARDSTICKS to the directory that holds them")
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--seed-ref-max", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs for every timing")
    ap.add_argument("--override", action="append", default=[],
                    help="a config override for every simulator run, e.g. --override activity=none")
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    rows = []
    # histories are reduced to features, not written, unless there are none (activity=none)
    files_only = args.override + ([] if "activity=none" in args.override else ["activity.write=false"])
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            # like for like with the yardstick: the same tables as files, no database, no report
            # (the features are computed from histories that are reduced, not written)
            sim_wall, sim_peak = timed([sys.executable, "-m", "simulator", f"n_partners={n}", *files_only, "db=none",
                                        "output.report=false", f"hydra.run.dir={tmp}/sim{n}"])
            full_wall, _ = timed([sys.executable, "-m", "simulator", f"n_partners={n}", *files_only, "db=none",
                                  f"hydra.run.dir={tmp}/full{n}"])
            default_wall = None
            if n <= 100_000:                   # the default run also loads SQLite (slow at 1M)
                default_wall, _ = timed([sys.executable, "-m", "simulator", f"n_partners={n}", *args.override,
                                         f"hydra.run.dir={tmp}/default{n}"])
            gen = generation_seconds(n, files_only)
            ref_wall, _ = timed([sys.executable, str(BENCH / "reference_vectorized.py"), str(n),
                                 f"{tmp}/ref{n}", "--csv-engine", "pyarrow"])
            seed_wall = None
            if n <= args.seed_ref_max:
                seed_wall, _ = timed([sys.executable, str(BENCH / "seed_reference.py"), str(n),
                                      f"{tmp}/seed{n}"])
            row = {"n": n, "sim_wall_s": round(sim_wall, 2), "sim_rows_per_s": round(n / sim_wall),
                   "with_report_wall_s": round(full_wall, 2),
                   "report_share": round((full_wall - sim_wall) / full_wall, 3),
                   "default_wall_s": None if default_wall is None else round(default_wall, 2),
                   "generation_s": round(gen, 3), "generation_rows_per_s": round(n / gen),
                   "sim_peak_mib": round(sim_peak), "ref_vectorized_wall_s": round(ref_wall, 2),
                   "ratio_vs_ref_vectorized": round(sim_wall / ref_wall, 2)}
            if seed_wall is not None:
                row.update(seed_reference_wall_s=round(seed_wall, 2),
                           speedup_vs_seed=round(seed_wall / sim_wall, 1))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| n | files only | rows/s | generation | peak MiB | ref_vectorized | ratio | seed_reference "
          "| speed-up | + report | report share | default (SQLite + report) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['sim_wall_s']} s | {r['sim_rows_per_s']:,} | {r['generation_s']} s | "
              f"{r['sim_peak_mib']} | {r['ref_vectorized_wall_s']} s | {r['ratio_vs_ref_vectorized']}x | "
              f"{r.get('seed_reference_wall_s', '-')} | {r.get('speedup_vs_seed', '-')} | "
              f"{r['with_report_wall_s']} s | {r['report_share']:.0%} | {r['default_wall_s'] or '-'} |")


if __name__ == "__main__":
    main()
