"""``python -m simulator.diff RUN_A RUN_B``: what changed between two runs, for a review.

The resolved-config keys that changed (old -> new) and every realized statistic that
moved (declared targets and column summaries from stats.json), as Markdown ready to
paste into a pull request, or as JSON with ``--format json`` (strict JSON: a statistic that
is not a finite number is null). A run whose files are missing, broken, or whose config no
longer matches its manifest is refused (exit 2, the file named; see simulator.runfiles).

A key that only copies another (an interpolation, ``${region_mix.weights}``) is listed once,
under the key it copies, with where it flows. Each moved statistic carries z, its move in
standard errors of the difference (both runs' standard errors: a target's ``se``, a
realized value's ``standard_errors``, a column mean's, rate's or share's own), and is
significant beyond 4, the rule of the project's targets; the statistics are listed by |z|,
largest first, those without a standard error last.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runfiles
from .errors import ConfigError

REQUIRED = (runfiles.STATS, runfiles.MANIFEST, runfiles.CONFIG)
SECTIONS = {"targets": list, "realized": Mapping, "columns": Mapping}   # stats.json's parts the diff reads
SIGNIFICANT = 4.0                      # |z| beyond which a move is more than chance (the targets' miss rule)
REFERENCE = re.compile(r"\$\{(\.*)([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}")   # a value that is one interpolation


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list) and data and all(isinstance(x, Mapping) and "target" in x for x in data):
        return {f"{prefix}.{x['target']}": x.get("realized") for x in data}
    if isinstance(data, float) and not math.isfinite(data):
        return {prefix: None}                  # NaN is not a statistic that can move, nor JSON
    return {prefix: data}


@dataclass(frozen=True)
class Run:
    """A run as the diff reads it: ``config`` and ``stats`` flattened to dotted keys,
    ``copies`` (a config key -> the key its interpolation copies) and ``errors`` (a
    statistic -> its standard error, where it has one)."""

    config: dict[str, Any]
    stats: dict[str, Any]
    copies: dict[str, str]
    errors: dict[str, float]


def _copies(flat: Mapping[str, Any]) -> dict[str, str]:
    """Each key of the unresolved config whose whole value is one interpolation -> the key it
    copies (a relative one, ``${..x}``, from the key's own node up)."""
    out = {}
    for key, value in flat.items():
        found = REFERENCE.fullmatch(value) if isinstance(value, str) else None
        if found:
            dots, ref = len(found.group(1)), found.group(2)
            parent = key.split(".")[:-1]
            out[key] = ".".join([*parent[:len(parent) - dots + 1], ref]) if dots else ref
    return out


def _errors(stats: Mapping) -> dict[str, float]:
    """The standard error of every statistic that has one: a target's ``se``, a realized
    value's (``standard_errors``), a column's mean (std / sqrt(values)), rate and shares
    (binomial)."""
    out = {f"targets.{t['target']}": t["se"] for t in stats["targets"]
           if isinstance(t.get("se"), (int, float)) and "target" in t}
    errors = stats.get("standard_errors")
    if isinstance(errors, Mapping):
        out.update({f"realized.{k}": v for k, v in _flatten(errors).items() if isinstance(v, (int, float))})
    for table, columns in stats["columns"].items():
        for column, summary in (columns.items() if isinstance(columns, Mapping) else ()):
            count, nulls = (summary.get("count"), summary.get("nulls", 0)) if isinstance(summary, Mapping) else (0, 0)
            if not (isinstance(count, int) and isinstance(nulls, int) and count > 0):
                continue
            n, at = count - nulls, f"columns.{table}.{column}"
            if n > 0 and isinstance(summary.get("std"), (int, float)):
                out[f"{at}.mean"] = summary["std"] / math.sqrt(n)
            if n > 0 and isinstance(summary.get("rate"), (int, float)) and 0 <= summary["rate"] <= 1:
                out[f"{at}.rate"] = math.sqrt(summary["rate"] * (1 - summary["rate"]) / n)
            shares = summary.get("shares")
            for label, share in (shares.items() if isinstance(shares, Mapping) else ()):
                if isinstance(share, (int, float)) and 0 <= share <= 1:
                    out[f"{at}.shares.{label}"] = math.sqrt(share * (1 - share) / count)
    return out


def load_run(path: Path) -> Run:
    """A run directory's flattened config and realized statistics, the config's copies and
    the statistics' standard errors."""
    missing = [name for name in REQUIRED if not (path / name).exists()]
    if missing:
        raise ConfigError([f"{path} is not a simulator run directory (missing {', '.join(missing)}); "
                           f"pass the directory a run printed after 'wrote ... to'"])
    from omegaconf import OmegaConf

    manifest = runfiles.read_manifest(path)
    saved = runfiles.read_config(path)
    config = runfiles.resolved_config(saved)
    runfiles.verify_config(path, config, manifest)
    stats = runfiles.read_json(path / runfiles.STATS, "the run's statistics")
    wrong = [f"'{k}' ({'a list' if t is list else 'an object'})" for k, t in SECTIONS.items()
             if not isinstance(stats, Mapping) or not isinstance(stats.get(k), t)]
    if wrong:
        raise ConfigError([f"{path / runfiles.STATS}: no {', '.join(wrong)} (the statistics of a run; "
                           f"{runfiles.REGENERATE})"])
    if not all(isinstance(x, Mapping) for x in stats["targets"]):
        raise ConfigError([f"{path / runfiles.STATS}: 'targets' must be a list of objects ({runfiles.REGENERATE})"])
    runfiles.verify_output(path, manifest, runfiles.STATS)     # well-formed, and still the run's own
    return Run(_flatten(config), _flatten({k: stats[k] for k in SECTIONS}),
               _copies(_flatten(OmegaConf.to_container(saved, resolve=False))), _errors(stats))


def _moved(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b))
    return a != b


def _source(key: str, copies: Mapping[str, str]) -> str | None:
    """The key ``key`` copies (through its nearest node that is an interpolation, followed
    to the end of a chain), None when it is no copy."""
    source, seen = None, set()
    while key not in seen:
        seen.add(key)
        parts = key.split(".")
        node = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in copies), None)
        if node is None:
            break
        key = source = copies[node] + key[len(node):]
    return source


def _config_changes(a: Run, b: Run) -> list[dict]:
    """The changed keys; a key that copies another changed key (the same old and new
    values) is folded into it, listed under ``flows_to``."""
    changed = {k: (a.config.get(k), b.config.get(k)) for k in sorted(set(a.config) | set(b.config))
               if _moved(a.config.get(k), b.config.get(k))}
    flows: dict[str, list[str]] = {}
    for key, values in changed.items():
        for run in (a, b):
            source = _source(key, run.copies)
            if source is not None and source != key and changed.get(source) == values:
                flows.setdefault(source, []).append(key)
                break
    folded = {k for keys in flows.values() for k in keys}
    return [{"key": k, "old": old, "new": new, **({"flows_to": flows[k]} if k in flows else {})}
            for k, (old, new) in changed.items() if k not in folded]


def _z(key: str, old: Any, new: Any, a: Run, b: Run) -> float | None:
    """The move of a statistic in standard errors of the difference (None without both
    runs' standard errors, or when it is no number)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        return None
    se_a, se_b = a.errors.get(key), b.errors.get(key)
    if se_a is None or se_b is None:
        return None
    se = math.hypot(se_a, se_b)
    return (new - old) / se if se > 0 else None


def compare(run_a: Path, run_b: Path) -> dict:
    """The config keys that changed and the statistics that moved from run A to run B, the
    statistics by |z|, largest first."""
    a, b = load_run(run_a), load_run(run_b)
    stats = []
    for k in sorted(set(a.stats) | set(b.stats)):
        old, new = a.stats.get(k), b.stats.get(k)
        if _moved(old, new):
            z = _z(k, old, new, a, b)
            stats.append({"statistic": k, "old": old, "new": new, "z": None if z is None else round(z, 2),
                          "significant": None if z is None else abs(z) > SIGNIFICANT})
    stats.sort(key=lambda s: (s["z"] is None, -abs(s["z"] or 0)))   # stable: by name within a |z|
    headline = [s for s in stats if s["statistic"].startswith(("targets.", "realized."))]
    return {"run_a": str(run_a), "run_b": str(run_b), "config": _config_changes(a, b), "headline": headline,
            "statistics": stats}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else f"`{value}`" if isinstance(value, str) else str(value)


def _delta(old: Any, new: Any) -> str:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return f"{new - old:+.4g}"
    return ""


def _zcell(s: Mapping) -> str:
    return "-" if s.get("z") is None else f"{s['z']:+.1f}" + (" **significant**" if s["significant"] else "")


def markdown(diff: Mapping, limit: int = 60) -> str:
    """The diff as Markdown for a pull request."""
    lines = [f"### World diff: `{diff['run_a']}` -> `{diff['run_b']}`", "",
             f"**Config** ({len(diff['config'])} keys changed)", ""]
    if diff["config"]:
        lines += ["| key | old | new | flows to |", "|---|---|---|---|"]
        lines += [f"| `{c['key']}` | {_fmt(c['old'])} | {_fmt(c['new'])} | "
                  f"{', '.join(f'`{k}`' for k in c.get('flows_to', []))} |" for c in diff["config"]]
    else:
        lines.append("No config change.")
    lines += ["", f"**Declared targets and headline statistics** ({len(diff['headline'])} moved)", ""]
    if diff["headline"]:
        lines += [f"By |z|, the move in standard errors of the difference, largest first; significant beyond "
                  f"{SIGNIFICANT:g}, the rule of the declared targets.", "",
                  "| statistic | old | new | change | z |", "|---|---|---|---|---|"]
        lines += [f"| {s['statistic']} | {_fmt(s['old'])} | {_fmt(s['new'])} | {_delta(s['old'], s['new'])} | "
                  f"{_zcell(s)} |" for s in diff["headline"][:limit]]
        if len(diff["headline"]) > limit:
            lines.append(f"| ... {len(diff['headline']) - limit} more (use --format json) | | | | |")
    others = len(diff["statistics"]) - len(diff["headline"])
    lines += ["", f"{others} column summary statistics moved as well (see `--format json`)."]
    return "\n".join(lines) + "\n"


DESCRIPTION = """\
Compare two simulator runs for a review: the resolved-config keys that changed (old -> new)
and every realized statistic that moved (declared targets and column summaries from
stats.json), sorted by |z| with a significance flag. A run whose files are missing, broken
or no longer match its manifest is refused (exit 2, the file named)."""


def row_limit(text: str) -> int:
    """argparse type of --limit: a whole number of rows, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of rows, 1 or more (the headline rows shown in "
                                         f"Markdown), got {text!r}")
    return value


def parser() -> runfiles.CliParser:
    ap = runfiles.CliParser(prog="python -m simulator.diff", description=DESCRIPTION)
    ap.add_argument("run_a", type=Path, help="the run before the change (a run directory)")
    ap.add_argument("run_b", type=Path, help="the run after it")
    runfiles.add_format_option(ap, "ready to paste into a pull request", "every statistic; strict JSON")
    ap.add_argument("--limit", type=row_limit, default=60, metavar="N",
                    help="headline rows shown in the Markdown (default 60, at least 1; the JSON has them all)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        diff = compare(args.run_a, args.run_b)
    except ConfigError as exc:
        print(exc.render("the runs"), file=sys.stderr)
        return 2
    print(json.dumps(diff, indent=2, default=str, allow_nan=False) + "\n" if args.format == "json"
          else markdown(diff, args.limit), end="")
    return 0


if __name__ == "__main__":
    from .secrets import mask_streams

    mask_streams()                             # every line it prints: a --db-url's password hidden
    sys.exit(main())
