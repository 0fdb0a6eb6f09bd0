"""``python -m simulator.arena RUN_DIR --policy module:function``: a policy played forward.

The run's world is replayed from a snapshot, period by period, with the policy's decisions
in place of the logging policy's, beside the logging policy, no intervention (``none``)
and the ``oracle`` (each period, the exact truth's best assignment under the same budget:
:func:`simulator.grading.oracle`). Common random numbers: every partner's draws (its churn
uniform and day in each period, its effect's noise) are the run's own streams, so two
policies differ only through their decisions, the same policy twice gives the same figures,
and ``logging`` replays the run exactly. The churn process is the run's (its rules, its
intercept from the manifest, a master's state moved by its subs' churn: the same
:class:`simulator.stages.churn.Periods` that generated it).

The policy is ``policy(features: DataFrame) -> DataFrame``: each period it receives the
partners active at that period's start with their point-in-time features (the key, the
decision date, the model-ready table's features and ``is_master_affiliate``; ``attrs``
holds the period, its date, the run directory and ``--budget``: None without one) and returns ``[key, intervention_type]``
for the partners it acts on; everyone else gets the control. Partners that were in one
period's features and are missing from the next churned: the outcome of T+30, which a
learning policy may read. Per period and in total, for each policy: realized churners,
expected churners (exact: the sum of P(Churned | do(its type)) over the active partners),
the value retained (the world's value column weighted by 1 - P) and the cost
(``interventions.costs``). ``arena.json``, ``arena.md`` and ``arena.html`` go into
``--out`` (default: the run directory).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import chunks, grading, ids, runfiles
from .errors import ConfigError
from .expr import frame_env
from .stage import RunContext, block_stream

EXIT_SIGINT = 130                                      # Ctrl-C, as the shell reports it

OUTPUTS = ("arena.json", "arena.md", "arena.html")
POLICIES = ("submitted", "logging", "none", "oracle")


@dataclass
class World:
    """A run read back for replay: its spec and stages, the partners as columns, the run's
    draws in the run's block layout, and the intercept it solved."""

    run_dir: Path
    spec: object
    churn: object
    interventions: object
    partners: pd.DataFrame
    env: dict
    facts: dict
    cache: dict                   # what moves, at every period start: drawn columns, histories' features
    u: np.ndarray                 # (n, periods) churn uniforms
    day: np.ndarray               # (n,) the churn day within a period
    type_u: np.ndarray            # (n, periods) the logging policy's type uniforms
    noise: np.ndarray             # (n, periods) the effects' standard normals
    pinned: np.ndarray            # golden records' pinned labels (NaN elsewhere)
    intercept: float | np.ndarray  # the label window's, or (a horizon) each period's per row
    gone: np.ndarray               # every partner's churn date in the run (NaT: stayed)
    start: int                     # the snapshot (its index) the policies are played from (the last)
    value: np.ndarray | None
    features: tuple[str, ...]


def _intercepts(manifest: dict, spec, partners: pd.DataFrame, churn) -> float | np.ndarray:
    """The run's label-window intercept, or with a horizon of snapshots each period's per
    row: (partners, periods), a scoped pass's own for the rows inside its scope."""
    if spec.timeline.snapshots == 1:
        return float(manifest["churn_intercept"])
    given = manifest["churn_intercepts"]
    periods = spec.timeline.periods
    out = np.array([[given[f"churn_intercept_{j}"] for j in range(periods)]] * spec.n)
    if "churn_intercept_0:inside" in given:
        scope = next(t.scope_column for s in spec.stages for t in s.steps() if t.scope_column)
        inside = partners[scope].to_numpy(dtype=bool)
        out[inside] = [given[f"churn_intercept_{j}:inside"] for j in range(periods)]
    return out


def _draws(spec, names: tuple[str, ...], draw: Callable[[np.random.Generator, int], np.ndarray]) -> np.ndarray:
    """A stream the engine draws per block (``RunContext.rng``), for the whole world."""
    return np.concatenate([draw(block_stream(spec.seed, b, *names), min(spec.block_size, spec.n - start))
                           for b, start in enumerate(range(0, spec.n, spec.block_size))])


def load(run_dir: Path) -> World:
    """The run, checked against its manifest, ready to replay."""
    from .library import load_run
    from .stages.network import Edges

    run = load_run(run_dir)
    spec = run.spec
    churn = next((s for s in spec.stages if s.kind == "churn"), None)
    iv = next((s for s in spec.stages if s.kind == "interventions"), None)
    if churn is None or iv is None:
        raise ConfigError([f"{run_dir}: this world has no {'churn process' if churn is None else 'interventions'}: "
                           f"nothing to play"])
    partners = run.tables[spec.table]
    env = frame_env(partners)
    env[spec.key] = partners[spec.key].astype(str).to_numpy()
    unread = sorted(set().union(*(r.expr.names for r in churn.rules), iv.condition_reads) - set(env))
    if unread:
        raise ConfigError([f"{run_dir}: the churn rules or the interventions read {', '.join(unread)}, which the "
                           f"partners table does not hold (a helper column): the arena cannot replay them"])
    gone = partners[churn.date_column].to_numpy(dtype="datetime64[us]")
    env[churn.cohort] = np.isnat(gone) | (gone > spec.timeline.start)   # in the world during the horizon
    env[churn.date_column] = gone
    facts = {}
    for stage in spec.stages:
        if stage.kind == "network":
            edges = run.tables[stage.table_name]
            facts[f"{stage.name}:edges"] = Edges(ids.rows_of(partners[spec.key], edges["master_affiliate_id"]),
                                                 ids.rows_of(partners[spec.key], edges["sub_affiliate_id"]),
                                                 edges["recruited_at"].to_numpy(dtype="datetime64[us]"))
    tl, n = spec.timeline, spec.n
    cache = chunks.replay_cache(spec)          # every period's state again
    pinned = np.full(n, np.nan)
    rows = ids.rows_of(partners[spec.key], pd.Series([r.partner_id for r in spec.golden], dtype=str))
    for rec, row in zip(spec.golden, rows):
        if churn.label in rec.pins and row >= 0:
            pinned[row] = float(rec.pins[churn.label])
    value = spec.role("value")
    e = tl.periods                          # the horizon's periods, then the label window's
    return World(run_dir, spec, churn, iv, partners, env, facts, cache,
                 _draws(spec, ("churn", "episodes"), lambda g, m: g.random((m, e))),
                 _draws(spec, ("churn", "day"), lambda g, m: g.integers(1, tl.episode_days + 1, m)),
                 _draws(spec, ("interventions", "type"), lambda g, m: g.random(m * e).reshape(m, e)),
                 _draws(spec, ("interventions", "noise"), lambda g, m: g.standard_normal((m, e))),
                 pinned, _intercepts(run.manifest, spec, partners, churn), gone, spec.timeline.snapshots - 1,
                 partners[value].to_numpy(dtype=float) if value in partners else None,
                 tuple(run.features))


@dataclass
class Period:
    """One policy's decisions and their exact truth in one period."""

    active: np.ndarray            # who is active at the period's start
    kind: np.ndarray              # each partner's type (codes)
    truth: np.ndarray             # (n, types) P(Churned | do(type)) at the period's state


class Play:
    """One policy played over the periods: the replay hook of :class:`Periods`."""

    def __init__(self, world: World, decide: Callable, effect: np.ndarray, start: int):
        self.world, self.decide, self.effect, self.start = world, decide, effect, start
        self.periods: list[Period] = []

    def __call__(self, j: int, state, alive: np.ndarray, hazard: np.ndarray) -> None:
        w, iv = self.world, self.world.interventions
        declared = iv.declared_at(state, j, w.spec.n)          # (the shocks acting on period j scale it)
        truth = iv.truth(hazard, declared)
        kind = np.full(w.spec.n, iv.types.index(iv.control), dtype=np.int32)
        kind[alive] = self.decide(j - self.start, state, alive, truth)[alive]   # j counts all periods
        self.effect[:, j] = iv.realized(declared, kind, w.noise[:, j])
        self.periods.append(Period(alive.copy(), kind, truth))


def play(world: World, decide: Callable, start: int, periods: int) -> tuple[list[dict], np.ndarray]:
    """The figures of one policy over ``periods`` periods from the snapshot ``start`` (its
    index), and each partner's churn period from it (-1: stayed). The world before the
    start is the run's; from it on, every period is played again."""
    from .stages.churn import Periods

    spec, iv = world.spec, world.interventions
    tl = spec.timeline
    effect = np.zeros((spec.n, tl.periods))
    hook = Play(world, decide, effect, start)
    day = tl.period_dates()[start]
    env = dict(world.env)
    env[world.churn.date_column] = np.where(world.gone <= day, world.gone, np.datetime64("NaT", "us"))
    ctx = RunContext(spec, None, env, facts=dict(world.facts), cache=dict(world.cache))
    path = Periods(world.churn, ctx, effect, world.u, world.day, world.pinned, replay=hook).play(world.intercept, start)
    cost = np.array([(iv.costs or {}).get(t, 0.0) for t in iv.types])
    rows = []
    for j, p in enumerate(hook.periods[:periods]):
        chosen = p.truth[np.arange(spec.n), p.kind]
        a = p.active
        rows.append({"period": j, "date": str(np.datetime64(tl.period_dates()[start + j], "D")),
                     "active": int(a.sum()),
                     "realized_churners": int(np.count_nonzero(path.episode == start + j)),
                     "expected_churners": float(chosen[a].sum()),
                     "value_retained": None if world.value is None else float((world.value * (1 - chosen))[a].sum()),
                     "cost": float(cost[p.kind][a].sum()),
                     "decisions": {t: int(np.count_nonzero(a & (p.kind == k))) for k, t in enumerate(iv.types)}})
    return rows, np.where(path.episode >= start, path.episode - start, -1)


# ----------------------------------------------------------------------------- the policies

def logging_policy(world: World) -> Callable:
    from .distributions import categorical_codes

    iv = world.interventions
    return lambda j, state, alive, truth: categorical_codes(iv.policy_shares(state, world.spec.n), world.type_u[:, world.start + j])


def control_policy(world: World) -> Callable:
    iv = world.interventions
    return lambda j, state, alive, truth: np.full(world.spec.n, iv.types.index(iv.control), dtype=np.int32)


def oracle_policy(world: World, budget: float | None) -> Callable:
    """Each period, the exact truth's best assignment under the budget (grading.oracle)."""
    iv = world.interventions

    def decide(j, state, alive, truth):
        out = np.full(world.spec.n, iv.types.index(iv.control), dtype=np.int32)
        out[alive] = grading.oracle(grading.Truth(iv.types, iv.control, truth[alive], None, iv.costs or {}), budget)
        return out
    return decide


def features_at(world: World, j: int, state, alive: np.ndarray) -> pd.DataFrame:
    """What a submitted policy sees at period ``j``: the active partners' point-in-time
    features (no label, no scenario, no truth)."""
    spec, rows = world.spec, np.flatnonzero(alive)
    date = spec.timeline.period_dates()[world.start + j]
    cols = {spec.key: np.asarray(state[spec.key])[rows], "decision_date": np.full(rows.size, date)}
    for name in (*world.features, "is_master_affiliate"):
        if name in state:
            cols[name] = np.asarray(state[name])[rows]
    frame = pd.DataFrame(cols)
    frame.attrs.update(period=j, date=str(np.datetime64(date, "D")), run_dir=str(world.run_dir))
    return frame


def submitted_policy(world: World, policy: Callable, where: str, budget: float | None) -> Callable:
    """The user's policy, its answer checked every period (a refusal names the period and row)."""
    spec, iv = world.spec, world.interventions
    cost = np.array([(iv.costs or {}).get(t, 0.0) for t in iv.types])

    def decide(j, state, alive, truth):
        seen = features_at(world, j, state, alive)
        seen.attrs["budget"] = budget
        try:
            answer = policy(seen.copy())
        except SystemExit as exc:                        # (not the arena's exit status)
            raise ConfigError([f"period {j} ({seen.attrs['date']}): the policy called sys.exit({exc.code!r}); "
                               f"it must return its decisions"]) from None
        except Exception as exc:                         # the user's code: one line, its file and line
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == where] or \
                traceback.extract_tb(exc.__traceback__)[-1:]
            at = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else where
            raise ConfigError([f"period {j} ({seen.attrs['date']}): the policy raised at {at}: "
                               f"{type(exc).__name__}: {exc}"]) from None
        return check(answer, j, seen, iv, cost, budget, spec.key, spec.n, np.flatnonzero(alive))
    return decide


def check(answer: object, j: int, seen: pd.DataFrame, iv, cost: np.ndarray, budget: float | None, key: str,
          n: int, rows: np.ndarray) -> np.ndarray:
    """The policy's answer as each partner's type (codes; the control where it does not act),
    or every problem with it, naming the period and the row."""
    where = f"period {j} ({seen.attrs['date']})"
    wanted = [key, "intervention_type"]
    if not isinstance(answer, pd.DataFrame) or not set(wanted) <= set(answer.columns):
        got = list(answer.columns) if isinstance(answer, pd.DataFrame) else type(answer).__name__
        raise ConfigError([f"{where}: the policy must return a DataFrame with columns {wanted}, got {got}"])
    problems = []
    keys = answer[key].astype(str).to_numpy()
    types = answer["intervention_type"].astype(str).to_numpy()
    position = pd.Index(seen[key].astype(str)).get_indexer(keys)
    code = pd.Index(iv.types).get_indexer(types)
    for r in np.flatnonzero(position < 0)[:5]:
        problems.append(f"{where} row {r}: {key} {keys[r]!r} is not active at this period's start")
    for r in np.flatnonzero(code < 0)[:5]:
        problems.append(f"{where} row {r}: intervention_type {types[r]!r} is not a type ({', '.join(iv.types)})")
    dup = pd.Series(keys).duplicated().to_numpy()
    for r in np.flatnonzero(dup)[:5]:
        problems.append(f"{where} row {r}: {key} {keys[r]!r} appears again")
    if problems:
        raise ConfigError(problems)
    spent = float((cost[code] - cost[iv.types.index(iv.control)]).sum())
    if budget is not None and spent > budget + 1e-9:
        over = int(np.searchsorted(np.cumsum(cost[code] - cost[iv.types.index(iv.control)]), budget, side="right"))
        raise ConfigError([f"{where} row {over}: the decisions cost {spent:,.2f}, above --budget {budget:,.2f} "
                           f"(this row's is the first that does not fit)"])
    out = np.full(n, iv.types.index(iv.control), dtype=np.int32)
    out[rows[position]] = code
    return out


def load_policy(text: str) -> tuple[Callable, str]:
    """``module:function`` (importable, or a .py file's path) -> (the function, its file)."""
    module, _, name = text.rpartition(":")
    if not module or not name:
        raise ConfigError([f"--policy {text!r}: must be module:function (e.g. examples/arena_policy.py:policy)"])
    try:
        if module.endswith(".py") or "/" in module:
            path = Path(module).resolve()
            if not path.is_file():
                raise ConfigError([f"--policy {text!r}: no such file {path}"])
            loader = importlib.util.spec_from_file_location(path.stem, path)
            mod = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(mod)
        else:
            sys.path.insert(0, str(Path.cwd()))
            mod = importlib.import_module(module)
    except ConfigError:
        raise
    except (Exception, SystemExit) as exc:             # (a module that exits when imported too)
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        at = f" at {last[0].filename}:{last[0].lineno}" if last else ""
        if isinstance(exc, SyntaxError) and exc.filename:   # (its place is the file's, not the importer's)
            at = f" at {exc.filename}:{exc.lineno}"
        raise ConfigError([f"--policy {text!r}: cannot import it{at}: {type(exc).__name__}: {exc}"]) from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise ConfigError([f"--policy {text!r}: {module} has no function {name!r}"])
    return fn, str(Path(getattr(mod, "__file__", module)).resolve())


# ----------------------------------------------------------------------------- the command

def arena(world: World, policy: Callable, where: str, periods: int, budget: float | None) -> dict:
    """Every policy's figures, per period and in total (the result's JSON shape), from the
    snapshot ``world.start``."""
    deciders = {"submitted": submitted_policy(world, policy, where, budget), "logging": logging_policy(world),
                "none": control_policy(world), "oracle": oracle_policy(world, budget)}
    control = control_policy(world)

    def within(decide: Callable) -> Callable:          # after the last period played: the control
        return lambda j, *state: decide(j, *state) if j < periods else control(j, *state)
    start = str(np.datetime64(world.spec.timeline.snapshot_dates()[world.start], "D"))
    out = {"run": str(world.run_dir), "seed": world.spec.seed, "start": start,
           "periods": periods, "budget": budget, "value_column": world.spec.role("value"), "policies": {}}
    for name, decide in deciders.items():
        rows, _ = play(world, within(decide), world.start, periods)
        total = {k: (None if any(r[k] is None for r in rows) else sum(r[k] for r in rows))
                 for k in ("realized_churners", "expected_churners", "value_retained", "cost")}
        out["policies"][name] = {"periods": rows, "total": total}
    return out


def _tables(result: dict) -> list[tuple[str, list[str], list[list]]]:
    """arena.md's and arena.html's tables as (heading, head, rows): the totals, then each
    period of each policy."""
    value = result["value_column"] or "value"
    totals = [[name, p["total"]["realized_churners"], p["total"]["expected_churners"], p["total"]["value_retained"],
               p["total"]["cost"]] for name, p in result["policies"].items()]
    periods = [[name, r["period"], r["date"], r["active"], r["realized_churners"], r["expected_churners"], r["cost"]]
               for name, p in result["policies"].items() for r in p["periods"]]
    return [("Totals", ["policy", "realized churners", "expected churners", f"{value} retained", "cost"], totals),
            ("By period", ["policy", "period", "date", "active", "realized", "expected", "cost"], periods)]


def _title(result: dict) -> str:
    periods = result["periods"]
    return (f"Arena (seed {result['seed']}, from {result['start']}, {periods} period{'s' * (periods != 1)}"
            + (f", budget {result['budget']:,.2f} a period)" if result["budget"] is not None else ")"))


def markdown(result: dict) -> str:
    from .review.canvas import markdown_table

    lines = [f"# {_title(result)}"]
    for heading, head, rows in _tables(result):
        lines += ["", f"## {heading}", "", *markdown_table(head, rows)]
    return "\n".join(lines) + "\n"


def html_page(result: dict) -> str:
    """arena.html: the tables of arena.md as a page in the report's style."""
    from html import escape

    from .review.canvas import html_table
    from .review.report import STYLE, panel

    panels = "".join(panel(heading, html_table(head, rows)) for heading, head, rows in _tables(result))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Arena</title><style>{STYLE}</style></head><body><h1>{escape(_title(result))}</h1>"
            f"<div class=panels>{panels}</div></body></html>")


def parser() -> argparse.ArgumentParser:
    from .evaluate import finite_budget

    ap = runfiles.CliParser(prog="python -m simulator.arena",
                            description="play a policy forward from a snapshot of a run, beside the logging "
                                        "policy, none and the oracle, with common random numbers")
    ap.add_argument("run_dir", type=Path, help="a published run directory")
    ap.add_argument("--policy", required=True, help="module:function (or path/to/file.py:function): "
                    "policy(features DataFrame) -> DataFrame[partner_id, intervention_type]")
    ap.add_argument("--start", help="the snapshot date to start from (default: the run's last snapshot)")
    ap.add_argument("--periods", type=int, help="how many periods to play (default: every period after the start)")
    ap.add_argument("--budget", type=finite_budget, help="the most the decisions of one period may cost "
                    "(interventions.costs)")
    ap.add_argument("--out", type=Path, help="where arena.json/.md/.html go (default: the run directory)")
    runfiles.add_format_option(ap, "arena.md's tables", "arena.json")
    return ap


def main(argv: list[str] | None = None) -> int:
    from .evaluate import claim_out_dir, release
    from .sinks.publication import write_text

    args = parser().parse_args(argv)
    made: list[Path] = []
    try:
        world = load(args.run_dir)
        tl = world.spec.timeline
        snapshots = [str(np.datetime64(d, "D")) for d in tl.snapshot_dates()]
        problems = []
        if args.start is not None and args.start not in snapshots:
            problems.append(f"--start {args.start!r}: not a snapshot of this run (its snapshots: {', '.join(snapshots)})")
        world.start = snapshots.index(args.start) if args.start in snapshots else tl.snapshots - 1
        available = tl.periods - world.start
        periods = available if args.periods is None else args.periods
        if not 1 <= periods <= available:
            problems.append(f"--periods {periods}: must be 1 to {available} (the periods after the start)")
        if args.budget is not None and not world.interventions.costs:
            problems.append("--budget: this world declares no interventions.costs")
        if problems:
            raise ConfigError(problems)
        policy, where = load_policy(args.policy)
        out_dir = args.out or args.run_dir
        made = claim_out_dir(out_dir)
        result = arena(world, policy, where, periods, args.budget)
    except ConfigError as exc:
        release(made)
        print(exc.render("the arena"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:                            # Ctrl-C: one line, nothing written
        release(made)
        print("interrupted: the arena wrote nothing", file=sys.stderr)
        return EXIT_SIGINT
    write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", out_dir / OUTPUTS[0])
    write_text(markdown(result), out_dir / OUTPUTS[1])
    write_text(html_page(result), out_dir / OUTPUTS[2])
    print(json.dumps(result, indent=2) if args.format == "json" else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
