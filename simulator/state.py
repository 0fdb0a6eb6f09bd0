"""A world's columns as of a day: the partners table's, moved by every stage whose columns move.

The partners table holds each partner's state at the feature date. A stage whose columns
move with the date (:meth:`Stage.varying`) gives them at any other day
(:meth:`Stage.state_at`), reading the moved columns of the stages before it: a scenario
reads the masters' network features as of that day. This module orders those stages and
lays their columns over the partners table's.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

import numpy as np
import pandas as pd

from .errors import ConfigError
from .spec.model import Domain
from .stage import RunContext, Stage


def as_column(values: object, domain: Domain) -> object:
    """Internal arrays -> the table's dtypes (labels as category, nullable ints as Int64)."""
    if domain.dtype == "str":
        return values
    if domain.dtype == "category":
        return values if isinstance(values, pd.Categorical) else pd.Categorical(values)
    if domain.dtype == "int" and domain.nullable:
        arr = np.asarray(values, dtype=float)
        return pd.arrays.IntegerArray(np.nan_to_num(arr).astype(np.int64), np.isnan(arr))
    return values


def _reads(stage: Stage) -> frozenset[str]:
    return frozenset().union(*(names for _, names in stage.reads()))


def _gives(stage: Stage) -> frozenset[str]:
    return stage.varying() | frozenset(stage.writes())


def movers(stages: Sequence[Stage], needed: Iterable[str] | None = None) -> list[Stage]:
    """The stages whose columns move (those giving a column of ``needed``, and every moving
    stage they read, when it is given), each after the moving stages it reads."""
    moving = [s for s in stages if s.varying()]
    # (a column both give, as a feature a history computes over the drawn column it
    # realizes, is the later's: a stage waits only for what it reads and does not give,
    # moving or not)
    after = {s.name: {o.name for o in moving if o is not s and (o.varying() - _gives(s)) & _reads(s)}
             for s in moving}
    if needed is not None:
        # (a column derived from one a later stage gives follows it: that stage is needed too)
        needed = frozenset(needed).union(*(s.follows(frozenset(needed)) for s in moving))
        keep = {s.name for s in moving if s.varying() & needed}
        todo = list(keep)
        while todo:
            for name in after[todo.pop()]:
                if name not in keep:
                    keep.add(name)
                    todo.append(name)
        after = {k: v & keep for k, v in after.items() if k in keep}
    by_name = {s.name: s for s in moving}
    try:
        order = list(TopologicalSorter(after).static_order())
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ConfigError([f"{cycle}: each reads a column another moves through the horizon; hold one of "
                           "those columns (persistence: 1) or drop the read"]) from None
    return [by_name[name] for name in order]


def state_at(ctx: RunContext, stages: Sequence[Stage], when: np.datetime64, gone: np.ndarray,
             base: Mapping[str, object] | None = None) -> dict[str, object]:
    """The columns as of the day ``when``: ``base`` (the partners table's columns) with
    each of ``stages`` (from :func:`movers`) laying its moved columns over them, and the
    columns the stages before it derive from those following them (:meth:`Stage.follow`)."""
    state = dict(ctx.env if base is None else base)
    for i, stage in enumerate(stages):
        moved = stage.state_at(ctx, when, gone, state)
        state.update(moved)
        if moved:
            follow(ctx, stages[:i], state, frozenset(moved))
    return state


def follow(ctx: RunContext, stages: Iterable[Stage], state: dict[str, object], given: frozenset[str]) -> None:
    """``state`` with the columns each of ``stages`` derives from the columns ``given``
    (a later stage's) recomputed from them (:meth:`Stage.follow`)."""
    for stage in stages:
        state.update(stage.follow(ctx, state, given))
