"""Blocks and chunks: how a world of any size is generated in pieces without changing a byte.

A *block* is the unit of the data: partners ``[b x B, (b+1) x B)`` (``block_size`` B,
65,536 by default: a data setting, unlike the chunk size) form a world of their own (:func:`block_spec`): every stream is keyed by the block's index (block 0 keeps
the bare names, so a world of one block is what it always was), its network is built
among its own partners, its golden records are block 0's. What is global, a world-level
solve (the churn intercept, the intercept of who left early), is solved once on block 0,
the *pilot*, and handed to every other block (``RunContext.given``): the pilot's own rows
meet the declared rate exactly, the world's rate is within the sampling error of the
pilot's partners (about 0.16 points at a 20% rate for 65,536).

A *chunk* is the unit of work: a run of consecutive blocks (``executor.chunk_size``
partners, rounded up to whole blocks) that one task generates, validates and returns.
Chunks change memory and parallelism, never the data: each block's tables are written as
they are (simulator.sinks.files.Staging), so the files are the same for every chunk size,
executor and number of workers.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import threads
from .spec import WorldSpec


def n_blocks(spec: WorldSpec) -> int:
    return max(1, -(-spec.n // spec.block_size))


def block_spec(spec: WorldSpec, b: int) -> WorldSpec:
    """The world of block ``b``: its own partners, streams keyed by its index, the golden
    records only in block 0."""
    start = b * spec.block_size
    return dataclasses.replace(spec, n=min(spec.block_size, spec.n - start), golden=spec.golden if b == 0 else (),
                               block=b, offset=start)


def blocks_per_chunk(spec: WorldSpec) -> int:
    """executor.chunk_size rounded up to whole blocks."""
    return max(1, -(-spec.executor.chunk_size // spec.block_size))


def workers(spec: WorldSpec) -> int:
    """Worker processes of executor=processes (or a LocalCluster): executor.workers, else one
    per core, but no more than there are chunks to give them (and at least one)."""
    return max(1, min(spec.executor.workers or os.cpu_count() or 1, len(chunks(spec))))


def chunks(spec: WorldSpec) -> list[list[int]]:
    """The blocks of each chunk after the pilot (block 0, always a chunk of its own)."""
    per, rest = blocks_per_chunk(spec), list(range(1, n_blocks(spec)))
    return [rest[i:i + per] for i in range(0, len(rest), per)]


@dataclass
class BlockResult:
    """One block's tables and what the run needs to know of them; ``invariants`` is None
    until the block is validated (:func:`validate_block`)."""

    block: int
    tables: dict[str, pd.DataFrame]
    facts: dict[str, object]
    invariants: list[dict] | None = None
    seconds: dict[str, float] = field(default_factory=dict)   # generate, validate
    csv: dict[str, bytes] = field(default_factory=dict)       # tables' CSV rows, encoded by a worker

    @property
    def rows(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.tables.items()}


def run_block(spec: WorldSpec, b: int, given: Mapping[str, float], validate: bool = True) -> BlockResult:
    """Generate block ``b`` of the world, and validate it (a schema or invariant failure raises)."""
    from .engine import simulate

    t0 = time.perf_counter()
    result = simulate(block_spec(spec, b), given)
    out = BlockResult(b, result.tables, result.facts, None, {"generate": time.perf_counter() - t0})
    return validate_block(spec, out) if validate else out


def validate_block(spec: WorldSpec, result: BlockResult) -> BlockResult:
    """Check the block's tables against their schemas and the world's invariants."""
    from .schemas import validate_tables

    if result.invariants is None:
        t0 = time.perf_counter()
        result.invariants = validate_tables(block_spec(spec, result.block), result.tables)
        result.seconds["validate"] = time.perf_counter() - t0
    return result


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Blocks' tables as one (each block's labels are categories of its own: their union)."""
    if len(frames) == 1:
        return frames[0]
    out = {}
    for col in frames[0].columns:
        parts = [f[col] for f in frames]
        if isinstance(parts[0].dtype, pd.CategoricalDtype):
            out[col] = pd.api.types.union_categoricals([p.array for p in parts], ignore_order=True)
        else:
            out[col] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(out)


def replay_cache(spec: WorldSpec) -> dict[str, list[dict[str, object]]]:
    """What a replay of the world needs at every period start that its tables do not hold
    (``RunContext.cache``, by its keys): the moved columns of every stage whose columns move
    (:meth:`~simulator.stages.moving.Motion.steps`: the helper columns too), and the features
    of histories run forward through a horizon (simulator.stages.forward: the tables hold a
    partner's rows up to its churn, not what a partner who stays longer goes on to show).
    One replay of each block from its own streams: the steps up to the histories' last
    (reduced, not kept) and the moving stages' own."""
    from .stages import forward

    moving = [s for s in spec.stages if getattr(s, "motion", None) is not None and s.varying()]
    quiet = {s.name: dataclasses.replace(s, write=False) for s in spec.stages
             if getattr(s, "histories", None) and s.varying()}
    world = dataclasses.replace(spec, stages=tuple(quiet.get(s.name, s) for s in spec.stages))
    keys = [forward.cache_key(s, h.name) for s in quiet.values() for h in s.histories]

    def steps(plan: list) -> list:
        last = max((i for i, step in enumerate(plan) if step.stage.name in quiet), default=-1)
        return [step for i, step in enumerate(plan) if i <= last or any(step.stage is m for m in moving)]
    parts = _replayed(world, steps, lambda ctx: [ctx.cache[k] for k in keys] + [m.motion.steps(ctx) for m in moving])
    names = [*keys, *(f"{m.name}:moving" for m in moving)]
    return {name: _joined([p[i] for p in parts]) for i, name in enumerate(names)}


def _replayed(spec: WorldSpec, steps, collect) -> list:
    """``collect(ctx)`` of every block after its ``steps(plan)`` ran again from the block's
    own streams, the pilot's solutions handed to the blocks after it, as in the run (no step
    a replay runs solves anything today: the solves come after the histories' steps in a
    horizon; a step that did would still be given the run's value)."""
    from .engine import initial_env
    from .plan import build_plan
    from .stage import RunContext
    from .stages import golden

    parts, given = [], {}
    for b in range(n_blocks(spec)):
        block = block_spec(spec, b)
        plan = build_plan(block)
        ctx = RunContext(block, golden.prepare(block, plan), initial_env(block), given=given)
        with threads.one_blas():
            for step in steps(plan):
                step.stage.run(step, ctx)
            parts.append(collect(ctx))
        if b == 0:
            given = dict(ctx.solved)
    return parts


def _joined(parts: list[list[dict[str, object]]]) -> list[dict[str, object]]:
    """Blocks' columns at each step (a list per block) as the world's, in block order."""
    joined = []
    for k in range(len(parts[0]) if parts else 0):
        step = {}
        for name, first in parts[0][k].items():
            values = [p[k][name] for p in parts]
            step[name] = (pd.Categorical.from_codes(np.concatenate([v.codes for v in values]), dtype=first.dtype)
                          if isinstance(first, pd.Categorical) else np.concatenate(values))
        joined.append(step)
    return joined
