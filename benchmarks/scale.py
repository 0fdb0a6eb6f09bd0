"""Scale benchmark (issue "Scale"): the simulator beside the yardstick in one invocation,
each with wall time and the peak memory of all its processes together (benchmarks/peak.py).

Runs, for ``--n`` partners (default 1M):
  * the yardstick ``benchmarks/yardstick/reference_vectorized.py`` (pyarrow CSV + Parquet);
  * like-for-like with it (``activity=none db=none output.report=false``: features drawn,
    CSV + Parquet) with ``executor=local`` and ``executor=processes`` (2 workers);
  * the floor of that like-for-like run on ``--workers`` cores: what cannot overlap (the
    imports, one compose, the pilot block) plus each other block's single-threaded work
    divided by the cores, as if it overlapped perfectly;
  * each process's peak of the ``processes`` run;
  * the default run at that size (features from histories, SQLite load, report);
  * the quick default: importing the stack, the default 10k run (with and without the
    report), and its floor (its imports, one compose and its one block, which nothing can
    overlap), against the import: medians of three invocations of each, taken in turns;
  * with ``--big N`` (e.g. 10000000): features from histories, Parquet, ``processes``, and
    how its time splits by step (summed over blocks, from the manifest), beside the same at
    ``--n`` for the throughput's linearity.
Prints a Markdown table; ratios are against the yardstick of the same invocation.

usage: [YARDSTICKS=DIR] python benchmarks/scale.py [--n 1000000] [--big 10000000] [--skip default] [--python PY]
(DIR holds reference_vectorized.py; by default benchmarks/yardstick/, the copy in the repository)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("YARDSTICKS", Path(__file__).resolve().parent / "yardstick"))   # the copy in the repo
LIKE = ["activity=none", "db=none", "output.report=false"]
BIG = ["activity.write=false", "output.formats=[parquet]", "db=none", "output.report=false"]


RUN = ("import json, sys; from pathlib import Path; from simulator import compose; from simulator.run import run\n"
       "r = run(compose(sys.argv[2:]), Path(sys.argv[1]))\n"
       "print(json.dumps({'steps': r.steps, 'seconds': r.seconds}))")
# The stack a run imports, as issue 26 names it
STACK = "import numpy, pandas, scipy.stats, pyarrow, hydra, omegaconf, pandera, sqlalchemy, psycopg2"
PYTHON = sys.executable      # the simulator's interpreter (--python)
QUICK = 3                    # invocations of each quick run; the table gives their medians
# What no executor can overlap, and the work that it can: the imports, one compose and the
# pilot block (every other block needs its solved intercepts), then blocks 1 and 2 done
# single-threaded, step by step, as the run does them (generate, check, Arrow, CSV, Parquet)
FLOOR = """
import io, json, sys, time
t0 = time.perf_counter()
from simulator import chunks, compose, threads
from simulator.executors import as_arrow
from simulator.load import load_spec
from simulator.schemas import validate_tables
import pyarrow.parquet as pq
out = {"import": time.perf_counter() - t0}
t = time.perf_counter(); spec = load_spec(compose(sys.argv[1:])); out["compose"] = time.perf_counter() - t
t = time.perf_counter(); pilot = chunks.run_block(spec, 0, {}, validate=False); out["pilot"] = time.perf_counter() - t
out["blocks"] = chunks.n_blocks(spec)
threads.single()
t = time.perf_counter(); validate_tables(chunks.block_spec(spec, 0), pilot.tables); out["pilot check"] = time.perf_counter() - t
work = {}
for b in range(1, min(3, out["blocks"])):
    t = time.perf_counter(); r = chunks.run_block(spec, b, pilot.facts["solved"], validate=False)
    step = {"generate": time.perf_counter() - t}
    t = time.perf_counter(); validate_tables(chunks.block_spec(spec, b), r.tables); step["check"] = time.perf_counter() - t
    t = time.perf_counter(); a = as_arrow(spec, r); step["arrow and csv"] = time.perf_counter() - t
    t = time.perf_counter()
    for table in a.tables.values():
        pq.write_table(table, io.BytesIO())
    step["parquet"] = time.perf_counter() - t
    for k, v in step.items():
        work[k] = work.get(k, 0) + v / (min(3, out["blocks"]) - 1)
out["per_block"] = work
print(json.dumps(out))
"""


def simulator(out: Path, *overrides: str, steps: bool = False, each: dict | None = None) -> tuple[float, float, dict]:
    """(wall, peak MiB, manifest) of the CLI run; with ``steps``, the run is started through
    the library (the same task, no Hydra job) to read its seconds per step as well;
    ``each`` receives each process's peak (benchmarks/peak.py)."""
    if steps:
        wall, peak, printed = measure([PYTHON, "-c", RUN, str(out), *overrides], cwd=str(ROOT),
                                      env={"PYTHONPATH": str(ROOT)})
        return wall, peak, {**json.loads((out / "manifest.json").read_text()), **json.loads(printed)}
    wall, peak, _ = measure([PYTHON, "-m", "simulator", f"hydra.run.dir={out}", *overrides],
                            cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)}, each=each)
    return wall, peak, json.loads((out / "manifest.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter the simulator runs in: a user's install (README command 1) is a venv "
                         "without the dev extras, whose hypothesis pandera's checks import (0.4 s) when present")
    ap.add_argument("--skip", default="", help="comma-separated: like,processes,default,floor,quick")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    global PYTHON
    PYTHON = args.python
    if not (BENCH / "reference_vectorized.py").is_file():
        sys.exit(f"the yardstick {BENCH / 'reference_vectorized.py'} is not there: set YARDSTICKS to the "
                 f"directory that holds reference_vectorized.py")
    n, rows = args.n, []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        tmp = Path(tmp)
        y_wall, y_peak, _ = measure([sys.executable, str(BENCH / "reference_vectorized.py"), str(n),
                                     str(tmp / "yard"), "--csv-engine", "pyarrow", "--formats", "csv,parquet"])
        rows.append(("yardstick reference_vectorized.py (pyarrow CSV + Parquet)", n, y_wall, y_peak, 1.0))
        procs = ["executor=processes", f"executor.workers={args.workers}"]
        if "like" not in skip:
            w, p, _ = simulator(tmp / "local", f"n_partners={n}", *LIKE)
            rows.append(("like-for-like, executor=local", n, w, p, w / y_wall))
            local = w
        if "floor" not in skip:
            _, _, printed = measure([PYTHON, "-c", FLOOR, f"n_partners={n}", *LIKE], cwd=str(ROOT),
                                    env={"PYTHONPATH": str(ROOT)})
            f = json.loads(printed)
            block = sum(f["per_block"].values())
            serial = f["import"] + f["compose"] + f["pilot"]
            floor = serial + (f["pilot check"] + (f["blocks"] - 1) * block) / args.workers
            rows.append((f"  floor: imports, compose, pilot {serial:.2f} s + (its check {f['pilot check']:.2f} + "
                         f"{f['blocks'] - 1} blocks x {block:.3f} CPU-s) / {args.workers} cores (perfect overlap)",
                         n, floor, None, floor / y_wall))
            rows.append(("  one block's CPU-s, single-threaded: " + ", ".join(
                f"{k} {v:.3f}" for k, v in f["per_block"].items()), 65_536, None, None, None))
        if "processes" not in skip:
            each: dict = {}
            w, p, _ = simulator(tmp / "procs", f"n_partners={n}", *LIKE, *procs, each=each)
            rows.append((f"like-for-like, executor=processes ({args.workers} workers)", n, w, p, w / y_wall))
            rows.append(("  peak by process: " + ", ".join(
                f"{'workers' if 'multiprocessing' in cmd else 'run'} {rss / 2**20:,.0f} MiB"
                for rss, cmd in sorted(each.values(), key=lambda v: 'multiprocessing' in v[1])
                if rss > 50 * 2**20), n, None, None, None))
            if "like" not in skip:
                rows.append(("  processes speed-up over local", n, local / w, None, None))
        if "quick" not in skip:
            # the median of QUICK invocations of each, taken in turns (the machine's drift hits all alike)
            runs = {"import": [], "report": [], "no report": [], "floor": []}
            for i in range(QUICK):
                runs["import"].append(measure([PYTHON, "-c", STACK])[:2])
                runs["report"].append(simulator(tmp / f"quick-{i}")[:2])
                runs["no report"].append(simulator(tmp / f"quick-no-report-{i}", "output.report=false")[:2])
                _, _, printed = measure([PYTHON, "-c", FLOOR, "n_partners=10000"], cwd=str(ROOT),
                                        env={"PYTHONPATH": str(ROOT)})
                runs["floor"].append(json.loads(printed))
            median = {k: (statistics.median(w for w, _ in v), max(p for _, p in v))
                      for k, v in runs.items() if k != "floor"}
            s_wall, s_peak = median["import"]
            rows.append((f"importing the stack ({STACK.removeprefix('import ')}), median of {QUICK}", 0, s_wall,
                         s_peak, None))
            q_wall, q_peak = median["report"]
            rows.append(("the default run (10k: histories, SQLite, report), x the import", 10_000, q_wall, q_peak,
                         q_wall / s_wall))
            q_wall, q_peak = median["no report"]
            rows.append(("  the same without the report (output.report=false; stats.json stays)", 10_000,
                         q_wall, q_peak, q_wall / s_wall))
            f = {k: statistics.median(r[k] for r in runs["floor"]) for k in ("import", "compose", "pilot")}
            rows.append((f"  floor, x the import: its imports {f['import']:.2f} s, one compose {f['compose']:.2f} s, "
                         f"its one block {f['pilot']:.2f} s", 10_000, sum(f.values()), None, sum(f.values()) / s_wall))
        if "default" not in skip:
            w, p, m = simulator(tmp / "default", f"n_partners={n}")
            rows.append(("default run (histories, SQLite load, report)", n, w, p, w / y_wall))
            if m["database"]["rows"]:
                loaded = sum(m["database"]["rows"].values())
                rows.append(("  rows loaded into SQLite", loaded, None, None, None))
        split = None
        if args.big:
            small_w, _, _ = simulator(tmp / "hist-n", f"n_partners={n}", *BIG, *procs)
            rows.append(("features from histories, Parquet, processes", n, small_w, None, None))
            w, p, m = simulator(tmp / "big", f"n_partners={args.big}", *BIG, *procs, steps=True)
            rows.append(("features from histories, Parquet, processes", args.big, w, p, None))
            rows.append(("  throughput at big / at n", args.big, (args.big / w) / (n / small_w), None, None))
            split = sorted(m["steps"].items(), key=lambda kv: -kv[1])
            phases = m["seconds"]
    print("| run | partners | seconds | peak MiB (all processes) | ratio (x the yardstick; quick rows: x the import) |")
    print("|---|---|---|---|---|")
    for name, size, wall, peak, ratio in rows:
        fmt = lambda v, f: "" if v is None else format(v, f)
        print(f"| {name} | {f'{size:,}' if size else ''} | {fmt(wall, '.2f')} | {fmt(peak, ',.0f')} | {fmt(ratio, '.2f')} |")
    if split:
        print(f"\nPhases at {args.big:,} partners (wall seconds; blocks: CPU seconds summed over workers):\n")
        print(", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
        total = sum(v for _, v in split)
        print(f"\nTime by step at {args.big:,} partners (CPU seconds summed over blocks and workers, {total:.0f} s):\n")
        print("| step | seconds | share |\n|---|---|---|")
        for name, secs in split[:15]:
            print(f"| {name} | {secs:.1f} | {secs / total:.0%} |")


if __name__ == "__main__":
    main()
