"""Scale benchmark (issue "Scale"): the simulator beside the yardstick in one invocation,
each with wall time and the peak memory of all its processes together (benchmarks/peak.py).

Runs, for ``--n`` partners (default 1M):
  * the yardstick ``../shared/bench/reference_vectorized.py`` (pyarrow CSV + Parquet);
  * like-for-like with it (``activity=none db=none output.report=false``: features drawn,
    CSV + Parquet) with ``executor=local`` and ``executor=processes`` (2 workers);
  * the default run at that size (features from histories, SQLite load, report);
  * with ``--big N`` (e.g. 10000000): features from histories, Parquet, ``processes``, and
    how its time splits by step (summed over blocks, from the manifest), beside the same at
    ``--n`` for the throughput's linearity.
Prints a Markdown table; ratios are against the yardstick of the same invocation.

usage: python benchmarks/scale.py [--n 1000000] [--big 10000000] [--skip default]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("YARDSTICKS", ROOT.parent / "shared" / "bench"))
LIKE = ["activity=none", "db=none", "output.report=false"]
BIG = ["activity.write=false", "output.formats=[parquet]", "db=none", "output.report=false"]


RUN = ("import json, sys; from pathlib import Path; from simulator import compose; from simulator.run import run\n"
       "r = run(compose(sys.argv[2:]), Path(sys.argv[1]))\n"
       "print(json.dumps({'steps': r.steps, 'seconds': r.seconds}))")


def simulator(out: Path, *overrides: str, steps: bool = False) -> tuple[float, float, dict]:
    """(wall, peak MiB, manifest) of the CLI run; with ``steps``, the run is started through
    the library (the same task, no Hydra job) to read its seconds per step as well."""
    if steps:
        wall, peak, printed = measure([sys.executable, "-c", RUN, str(out), *overrides], cwd=str(ROOT),
                                      env={"PYTHONPATH": str(ROOT)})
        return wall, peak, {**json.loads((out / "manifest.json").read_text()), **json.loads(printed)}
    wall, peak, _ = measure([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", *overrides],
                            cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)})
    return wall, peak, json.loads((out / "manifest.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma-separated: like,processes,default")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
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
        if "processes" not in skip:
            w, p, _ = simulator(tmp / "procs", f"n_partners={n}", *LIKE, *procs)
            rows.append((f"like-for-like, executor=processes ({args.workers} workers)", n, w, p, w / y_wall))
            if "like" not in skip:
                rows.append(("  processes speed-up over local", n, local / w, None, None))
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
    print("| run | partners | seconds | peak MiB (all processes) | x yardstick |")
    print("|---|---|---|---|---|")
    for name, size, wall, peak, ratio in rows:
        fmt = lambda v, f: "" if v is None else format(v, f)
        print(f"| {name} | {size:,} | {fmt(wall, '.2f')} | {fmt(peak, ',.0f')} | {fmt(ratio, '.2f')} |")
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
