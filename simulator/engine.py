"""Run the plan: spec in, tables out. No I/O here (that is sinks/).

The engine knows no stage by name: it pre-fills every stage-written column with nulls of
its domain, runs the plan's steps (each through its stage), checks the golden records,
assembles the partners table from the stages' output columns, and lets each stage build
the tables that read the finished partners table.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import ids, threads
from .errors import ConfigError
from .plan import build_plan
from .spec import WorldSpec
from .state import as_column
from .stage import RunContext
from .stages import golden
from .stages.golden import equal

NULLS = {"bool": lambda n: np.zeros(n, dtype=bool), "datetime": lambda n: np.full(n, np.datetime64("NaT", "us"))}


@dataclass
class Result:
    """The generated tables plus facts about the run (intercept, step timings)."""

    tables: dict[str, pd.DataFrame]
    facts: dict[str, object] = field(default_factory=dict)


def initial_env(spec: WorldSpec) -> dict[str, object]:
    """The key column, and every column a stage writes other than by a column step, null
    until its step runs (a split pass fills its share of the rows)."""
    entity = spec.entity.entity
    env: dict[str, object] = {spec.key: ids.partner_ids(entity.prefix, entity.width, spec.n, spec.offset)}
    for s in spec.stages:
        if s.entity is None:
            for col, dom in s.writes().items():
                env[col] = NULLS.get(dom.dtype, lambda n: np.full(n, np.nan))(spec.n)
    return env


def check_golden(spec: WorldSpec, env: dict[str, object]) -> None:
    problems = []
    for rec in spec.golden:
        for col, pin in rec.pins.items():
            got = env[col][rec.row]
            if not bool(equal(np.asarray([got], dtype=object if isinstance(got, str) else None), pin)[0]):
                problems.append(f"{rec.path} ({rec.partner_id}): {col} is pinned to {pin!r}, "
                                f"but the generated world gives {got!r}")
    if problems:
        raise ConfigError(problems)


def simulate(spec: WorldSpec, given: Mapping[str, float] | None = None) -> Result:
    """Generate every table of the world (or block, simulator.chunks) described by
    ``spec``; ``given``: world-level solutions solved on another block."""
    plan = build_plan(spec)
    ctx = RunContext(spec, golden.prepare(spec, plan), initial_env(spec), given=dict(given or {}))
    timings: dict[str, float] = {}
    with threads.one_blas():
        for step in plan:
            start = time.perf_counter()
            step.stage.run(step, ctx)
            timings[step.name] = time.perf_counter() - start
    check_golden(spec, ctx.env)
    domains = spec.domains()
    partners = pd.DataFrame({c: as_column(ctx.env[c], domains[c]) for c in spec.output_columns})
    for s in spec.stages:
        s.finish(ctx, partners)
    return Result({spec.table: partners, **ctx.tables},
                  {**ctx.facts, "solved": ctx.solved, "step_seconds": timings, "plan": [s.name for s in plan]})

