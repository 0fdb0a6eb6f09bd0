"""Run a command and measure its wall time and the peak memory of all its processes together.

The peak is the largest sum of the resident set sizes of the process and every descendant
(worker processes, a dask scheduler and its workers), sampled every 20 ms with psutil: a
per-process ``ru_maxrss`` would miss that two workers and the writer are alive at once.

usage (library): ``wall, peak_mib = measure([...])``; (CLI): python benchmarks/peak.py CMD...
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil


def _tree_rss(proc: psutil.Process, each: dict[int, list] | None = None) -> int:
    """The resident bytes of ``proc`` and its descendants; ``each`` keeps every process's
    peak and command line by pid."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
            if each is not None:
                seen = each.setdefault(p.pid, [0, " ".join(p.cmdline())])
                seen[0] = max(seen[0], rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
    return total


def measure(cmd: list[str], cwd: str | None = None, env: dict | None = None,
            interval: float = 0.02, each: dict[int, list] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak MiB of the process tree, stdout) of ``cmd``; exits on failure.
    ``each``, a dict, receives every process's [peak bytes, command line] by pid."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watched, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _tree_rss(watched, each))
            except psutil.NoSuchProcess:
                return
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, peak[0] / 2**20, out


if __name__ == "__main__":
    wall, peak, _ = measure(sys.argv[1:])
    print(f"{wall:.2f} s, peak {peak:,.0f} MiB (all processes)")
