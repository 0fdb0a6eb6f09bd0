"""Every shipped world meets its own declarations (issue "Realism", item 8): the default world
and every file under ``conf/experiment/`` at ``--n`` partners (default 100,000) and each of
``--seeds`` (default 42 and 7), histories reduced, not written; a Markdown table of each
run's misses (stats.json), their names, the declared bounds it breaks at all (a bound's
miss needs a breach of 4 standard errors; at 100,000 partners the shipped worlds are held
to the bound itself), and its wall time. Exits 1 when any run misses a target or breaks a
bound: too large for the test suite, so it lives here.

usage: python benchmarks/declarations.py [--n 100000] [--seeds 42 7] [--worlds default payment_crisis ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from simulator import compose  # noqa: E402


def worlds() -> list[str]:
    return ["default", *sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))]


def run(world: str, n: int, seed: int, out: Path) -> tuple[list[str], list[str], float]:
    """The targets one run misses, the bounds it breaks, and its wall time."""
    overrides = [f"hydra.run.dir={out}", f"n_partners={n}", f"seed={seed}", "db=none", "output.report=false"]
    if world != "default":
        overrides.append(f"experiment={world}")
    if "write" in (compose(overrides[1:]).get("activity") or {}):   # histories to reduce, not write
        overrides.append("activity.write=false")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "simulator", *overrides], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{world} (seed {seed}) failed ({proc.returncode}):\n{proc.stderr}")
    stats = json.loads((out / "stats.json").read_text())
    return ([t["target"] for t in stats["targets"] if t.get("miss")],
            [t["target"] for t in stats["targets"] if t.get("breached")], wall)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    ap.add_argument("--worlds", nargs="+", default=None, help="default, or experiment names (default: all)")
    args = ap.parse_args(argv)
    chosen = args.worlds or worlds()
    print(f"| world | seed | misses | missed targets | bounds broken | wall |\n|---|---|---|---|---|---|")
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for world in chosen:
            for seed in args.seeds:
                missed, broken, wall = run(world, args.n, seed, Path(tmp) / f"{world}-{seed}")
                total += len(missed) + len(broken)
                print(f"| {world} | {seed} | {len(missed)} | {', '.join(missed) or '-'} | {', '.join(broken) or '-'} "
                      f"| {wall:.1f} s |", flush=True)
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
