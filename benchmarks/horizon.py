"""Horizon benchmark (issue "Time"): a world of 12 monthly snapshots beside the same world
with one, and the yardstick, in one invocation; wall time and the peak memory of all
processes together (benchmarks/peak.py).

Runs, with features from raw histories run forward (``experiment=horizon_histories``,
histories reduced, not written: ``activity.write=false``; ``--activity none``: drawn, as
``experiment=horizon``), Parquet, ``db=none``, no report:
  * the yardstick ``benchmarks/yardstick/reference_vectorized.py`` at ``--n`` (Parquet);
  * ``--n`` partners with ``timeline.snapshots=1`` and with ``--snapshots`` (default 12):
    the bound is at most 5x;
  * ``--linear`` partners (default 3x ``--n``) with the snapshots: throughput against ``--n``'s;
  * with ``--big N`` (e.g. 10000000): N partners with one snapshot (the bound: 3 minutes).
Prints a Markdown table.

usage: python benchmarks/horizon.py [--n 1000000] [--snapshots 12] [--linear 3000000] [--big 10000000]
                                    [--activity histories|none] [--repeat 3]
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
BENCH = Path(os.environ.get("YARDSTICKS", Path(__file__).resolve().parent / "yardstick"))
WORLDS = {"histories": ["experiment=horizon_histories", "activity.write=false"],
          "none": ["experiment=horizon"]}
OUTPUT = ["db=none", "output.report=false", "output.formats=[parquet]"]


def simulator(out: Path, *overrides: str) -> tuple[float, float, dict]:
    wall, peak, _ = measure([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", *overrides],
                            cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)})
    return wall, peak, json.loads((out / "manifest.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--snapshots", type=int, default=12)
    ap.add_argument("--linear", type=int, default=0, help="a larger world for linearity (default: 3 x --n; -1: none)")
    ap.add_argument("--big", type=int, default=0, help="a world of one snapshot (e.g. 10000000)")
    ap.add_argument("--activity", choices=sorted(WORLDS), default="histories",
                    help="features from histories run forward (default) or drawn")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the one- and the many-snapshot world this many times each, in turns (medians; "
                         "peaks: the largest)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    world = [*WORLDS[args.activity], *OUTPUT]
    n, k, rows = args.n, args.snapshots, []
    linear = args.linear or 3 * n
    with tempfile.TemporaryDirectory(prefix="horizon-bench-") as tmp:
        tmp = Path(tmp)
        y_wall, y_peak, _ = measure([sys.executable, str(BENCH / "reference_vectorized.py"), str(n),
                                     str(tmp / "yard"), "--formats", "parquet"])
        rows.append(("yardstick reference_vectorized.py (Parquet)", n, y_wall, y_peak, None, None))
        # the two worlds in turns, --repeat times each: the machine's state drifts by about as
        # much as the bound's margin, and taking them alternately lets both see the same drift
        ones, manys = [], []
        for _ in range(args.repeat):
            ones.append(simulator(tmp / "one", f"n_partners={n}", *world, "timeline.snapshots=1"))
            manys.append(simulator(tmp / "many", f"n_partners={n}", *world, f"timeline.snapshots={k}"))
        one, p1 = statistics.median(r[0] for r in ones), max(r[1] for r in ones)
        w, p, m = statistics.median(r[0] for r in manys), max(r[1] for r in manys), manys[-1][2]
        each = lambda runs: "" if len(runs) == 1 else f" (median of {', '.join(f'{r[0]:.2f}' for r in runs)})"
        rows.append((f"one snapshot{each(ones)}", n, one, p1, 1.0, None))
        rows.append((f"{k} snapshots{each(manys)}", n, w, p, w / one, m["tables"]["features_panel"]["rows"]))
        if linear > 0:
            w3, p3, m3 = simulator(tmp / "linear", f"n_partners={linear}", *world, f"timeline.snapshots={k}")
            rows.append((f"{k} snapshots", linear, w3, p3, w3 / one, m3["tables"]["features_panel"]["rows"]))
            rows.append((f"  throughput at {linear:,} / at {n:,} (1: linear)", None, (linear / w3) / (n / w), None,
                         None, None))
        if args.big:
            wb, pb, _ = simulator(tmp / "big", f"n_partners={args.big}", *world, "timeline.snapshots=1",
                                  "executor=processes")
            rows.append(("one snapshot, executor=processes", args.big, wb, pb, None, None))
    print("| run | partners | seconds | peak MiB (all processes) | x one snapshot | features_panel rows |")
    print("|---|---|---|---|---|---|")
    for name, size, wall, peak, ratio, panel in rows:
        fmt = lambda v, f: "" if v is None else format(v, f)
        print(f"| {name} | {fmt(size, ',')} | {fmt(wall, '.2f')} | {fmt(peak, ',.0f')} | {fmt(ratio, '.2f')} | "
              f"{fmt(panel, ',')} |")


if __name__ == "__main__":
    main()
