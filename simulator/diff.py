"""``python -m simulator.diff RUN_A RUN_B``: what changed between two runs, for a review.

The resolved-config keys that changed (old -> new) and every realized statistic that
moved (declared targets and column summaries from stats.json), as Markdown ready to
paste into a pull request, or as JSON with ``--format json`` (strict JSON: a statistic that
is not a finite number is null). A run whose files are missing, broken, or whose config no
longer matches its manifest is refused (exit 2, the file named; see simulator.runfiles).
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import runfiles
from .errors import ConfigError

REQUIRED = (runfiles.STATS, runfiles.MANIFEST, runfiles.CONFIG)
SECTIONS = {"targets": list, "realized": Mapping, "columns": Mapping}   # stats.json's parts the diff reads


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


def load_run(path: Path) -> tuple[dict, dict]:
    """(flattened config, flattened realized statistics) of a run directory."""
    missing = [name for name in REQUIRED if not (path / name).exists()]
    if missing:
        raise ConfigError([f"{path} is not a simulator run directory (missing {', '.join(missing)}); "
                           f"pass the directory a run printed after 'wrote ... to'"])
    manifest = runfiles.read_manifest(path)
    config = runfiles.resolved_config(runfiles.read_config(path))
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
    return _flatten(config), _flatten({k: stats[k] for k in SECTIONS})


def _moved(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b))
    return a != b


def compare(run_a: Path, run_b: Path) -> dict:
    """The config keys that changed and the statistics that moved from run A to run B."""
    cfg_a, stats_a = load_run(run_a)
    cfg_b, stats_b = load_run(run_b)
    config = [{"key": k, "old": cfg_a.get(k), "new": cfg_b.get(k)}
              for k in sorted(set(cfg_a) | set(cfg_b)) if _moved(cfg_a.get(k), cfg_b.get(k))]
    stats = [{"statistic": k, "old": stats_a.get(k), "new": stats_b.get(k)}
             for k in sorted(set(stats_a) | set(stats_b)) if _moved(stats_a.get(k), stats_b.get(k))]
    headline = [s for s in stats if s["statistic"].startswith(("targets.", "realized."))]
    return {"run_a": str(run_a), "run_b": str(run_b), "config": config, "headline": headline,
            "statistics": stats}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else f"`{value}`" if isinstance(value, str) else str(value)


def _delta(old: Any, new: Any) -> str:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return f"{new - old:+.4g}"
    return ""


def markdown(diff: Mapping, limit: int = 60) -> str:
    """The diff as Markdown for a pull request."""
    lines = [f"### World diff: `{diff['run_a']}` -> `{diff['run_b']}`", "",
             f"**Config** ({len(diff['config'])} keys changed)", ""]
    if diff["config"]:
        lines += ["| key | old | new |", "|---|---|---|"]
        lines += [f"| `{c['key']}` | {_fmt(c['old'])} | {_fmt(c['new'])} |" for c in diff["config"]]
    else:
        lines.append("No config change.")
    lines += ["", f"**Declared targets and headline statistics** ({len(diff['headline'])} moved)", ""]
    if diff["headline"]:
        lines += ["| statistic | old | new | change |", "|---|---|---|---|"]
        lines += [f"| {s['statistic']} | {_fmt(s['old'])} | {_fmt(s['new'])} | {_delta(s['old'], s['new'])} |"
                  for s in diff["headline"][:limit]]
        if len(diff["headline"]) > limit:
            lines.append(f"| ... {len(diff['headline']) - limit} more (use --format json) | | | |")
    others = len(diff["statistics"]) - len(diff["headline"])
    lines += ["", f"{others} column summary statistics moved as well (see `--format json`)."]
    return "\n".join(lines) + "\n"


DESCRIPTION = """\
Compare two simulator runs for a review: the resolved-config keys that changed (old -> new)
and every realized statistic that moved (declared targets and column summaries from
stats.json). A run whose files are missing, broken or no longer match its manifest is
refused (exit 2, the file named)."""


def parser() -> runfiles.CliParser:
    ap = runfiles.CliParser(prog="python -m simulator.diff", description=DESCRIPTION)
    ap.add_argument("run_a", type=Path, help="the run before the change (a run directory)")
    ap.add_argument("run_b", type=Path, help="the run after it")
    runfiles.add_format_option(ap, "ready to paste into a pull request", "every statistic; strict JSON")
    ap.add_argument("--limit", type=int, default=60, metavar="N",
                    help="headline rows shown in the Markdown (default 60; the JSON has them all)")
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
