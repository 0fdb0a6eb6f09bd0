"""Benchmark the raw histories and the feature pipeline (issue 4).

For each size, in a child process (so peak memory is the process's own max RSS):
generation of the whole world (partners, network, histories -> 18 features,
interventions) with the histories written as tables (activity.write=true, the default)
or only reduced to features (activity.write=false), best of --repeat runs, with the
history steps' share, partners/s and history rows/s (rows generated and reduced, whether
or not they are kept).

usage: python benchmarks/bench_features.py [--sizes 10000,1000000] [--repeat 3] [--write-max 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, time
from simulator import compose
from simulator.engine import simulate
from simulator.executors import blocks
from simulator.load import load_spec
spec = load_spec(compose(%r))
best = None
for _ in range(%d):
    t = time.perf_counter()
    steps = {}
    for result in blocks(spec):            # block by block, as a run generates (executor=local)
        for k, v in result.facts["step_seconds"].items():
            steps[k] = steps.get(k, 0.0) + v
        del result
    wall = time.perf_counter() - t
    if best is None or wall < best[0]:
        best = (wall, sum(v for k, v in steps.items() if k.startswith("history:")),
                {k: round(v, 3) for k, v in steps.items() if k.startswith("history:")})
# history rows per partner, counted on a small world with the tables kept
small = simulate(load_spec(compose(["n_partners=2000", "activity.write=true"]))).tables
rows_per_partner = sum(len(small[h.table]) for h in spec.stage("activity").histories) / 2000
print(json.dumps({"wall": best[0], "histories": best[1], "steps": best[2], "rows_per_partner": rows_per_partner,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(n: int, write: bool, repeat: int) -> dict:
    overrides = [f"n_partners={n}", f"activity.write={str(write).lower()}"]
    proc = subprocess.run([sys.executable, "-c", CHILD % (overrides, repeat)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        sys.exit(f"n={n} write={write} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write-max", type=int, default=100_000, help="largest size also run with tables kept")
    args = ap.parse_args()
    print(f"{'partners':>10} {'tables':>8} {'generate s':>11} {'histories s':>12} {'partners/s':>11} "
          f"{'history rows/s':>15} {'peak MiB':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        for write in ([True] if n <= args.write_max else []) + [False]:
            r = measure(n, write, args.repeat if n <= args.write_max else 1)
            rows = n * r["rows_per_partner"]
            print(f"{n:>10,} {'kept' if write else 'reduced':>8} {r['wall']:>11.2f} {r['histories']:>12.2f} "
                  f"{n / r['wall']:>11,.0f} {rows / r['histories']:>15,.0f} {r['peak_mib']:>9,.0f}   {r['steps']}")


if __name__ == "__main__":
    main()
