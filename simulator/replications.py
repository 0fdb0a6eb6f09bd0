"""``python -m simulator.evaluate --summarize SWEEP_DIR``: every figure over a sweep's jobs.

A sweep (``python -m simulator -m seed=1,2,3 ...``) gives each job its own run directory;
graded each (``python -m simulator.evaluate JOB_DIR --predictions ...``), every job holds an
``evaluation.json``. Replications are how a method is judged (the ACIC and IHDP tradition):
each numeric figure of those files becomes its mean and standard error over the jobs
(sd / sqrt(jobs)), with the count of jobs that have it; lists of rows (the policies, the
off-policy estimators) are keyed by their name, tables and curves are left out.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

EVALUATION = "evaluation.json"
OUTPUTS = ("evaluation_summary.json", "evaluation_summary.md")
SKIP = {"run", "calibration", "curve", "intervals_95", "recorded", "budget"}


def figures(result: Mapping, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of an evaluation, by its dotted path (policy rows by name)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        if key in SKIP:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            if math.isfinite(value):
                out[path] = float(value)
        elif isinstance(value, Mapping):
            out.update(figures(value, f"{path}."))
        elif isinstance(value, list) and all(isinstance(v, Mapping) and "name" in v for v in value):
            for row in value:
                out.update(figures({k: v for k, v in row.items() if k != "name"}, f"{path}.{row['name']}."))
    return out


def jobs(sweep: Path) -> list[Path]:
    """The evaluation.json of every job under ``sweep`` (its job directories, one level or two down)."""
    if not sweep.is_dir():
        raise ConfigError([f"--summarize {sweep}: not a directory (a sweep's directory, whose jobs hold "
                           f"{EVALUATION})"])
    found = sorted({*sweep.glob(f"*/{EVALUATION}"), *sweep.glob(f"*/*/{EVALUATION}")})
    if not found:
        raise ConfigError([f"--summarize {sweep}: no job holds {EVALUATION} (grade each job first: "
                           f"python -m simulator.evaluate JOB_DIR --predictions FILE)"])
    return found


def summarize(sweep: Path) -> dict:
    """Mean, standard error and count of every figure over the sweep's graded jobs."""
    per_job = []
    problems = []
    for path in jobs(sweep):
        try:
            result = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path}: not an evaluation ({exc})")
            continue
        if not isinstance(result, Mapping):
            problems.append(f"{path}: not an evaluation (a JSON object expected)")
            continue
        per_job.append((path.parent, figures(result)))
    if problems:
        raise ConfigError(problems)
    names = sorted({name for _, found in per_job for name in found})
    rows = {}
    for name in names:
        values = [found[name] for _, found in per_job if name in found]
        m = len(values)
        mean = sum(values) / m
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (m - 1)) if m > 1 else None
        rows[name] = {"mean": mean, "se": None if sd is None else sd / math.sqrt(m), "jobs": m}
    return {"sweep": str(sweep), "jobs": [str(p.relative_to(sweep)) for p, _ in per_job], "figures": rows}


def markdown(summary: dict) -> str:
    lines = [f"# Evaluations over {len(summary['jobs'])} jobs", "", f"Sweep: `{summary['sweep']}`", "",
             "| figure | mean | SE | jobs |", "|---|---|---|---|"]
    for name, row in summary["figures"].items():
        se = "n/a" if row["se"] is None else f"{row['se']:.4g}"
        lines.append(f"| {name} | {row['mean']:.4g} | {se} | {row['jobs']} |")
    return "\n".join(lines) + "\n"


def write(sweep: Path, summary: dict) -> None:
    from .sinks.publication import write_text

    write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", sweep / OUTPUTS[0])
    write_text(markdown(summary), sweep / OUTPUTS[1])
