"""The stage plan: which step runs when, derived from what each step reads and writes.

Every stage contributes steps (a column, a history, a model pass); an edge goes from the
step that writes a column to every step that reads it, and ``graphlib`` orders them.
One kind of cycle is resolved by scope, without knowing any stage by name: a *scoped*
step (``Step.scope_column``) reads the other stages' columns only on the rows where that
column is false and writes only the rows where it is true (the network: masters' features
from their subs' churn); a *splittable* step that reads what the scoped step writes and
writes what it reads (the churn model reading masters' network features) is run as a pass
over the rows outside the scope, then the scoped step, then a pass over the rows inside.
"""
from __future__ import annotations

import graphlib
from dataclasses import replace

from .errors import ConfigError
from .stage import Step, WorldSpec

__all__ = ["Step", "build_plan"]              # Step lives with the stage contract; stages import it here


OUTSIDE, INSIDE = "@outside", "@inside"       # the names of a split step's two passes


def split_around(scoped: Step) -> bool:
    """Whether a splittable step runs in two passes around the scoped step ``scoped`` (as
    :func:`build_plan` gives it): the pass over the rows inside its scope comes after it."""
    return any(r.endswith(OUTSIDE) for r in scoped.reads)


def _split(steps: list[Step]) -> list[Step]:
    """Split each splittable step that forms a cycle with a scoped step (see above)."""
    out = list(steps)
    for scoped in [s for s in steps if s.scope_column]:
        for s in [s for s in out if s.splittable and s.scope is None]:
            if not (s.reads & scoped.writes and scoped.reads & s.writes):
                continue
            col, first = scoped.scope_column, f"{s.name}{OUTSIDE}"
            outside = replace(s, name=first, reads=s.reads - scoped.writes - s.inside_reads | {col},
                              scope=("outside", col))
            inside = replace(s, name=f"{s.name}{INSIDE}", reads=s.reads | {col, first}, scope=("inside", col))
            i = out.index(s)
            out[i:i + 1] = [outside, inside]
            j = out.index(scoped)
            out[j] = replace(scoped, reads=scoped.reads - s.writes | {first})
            scoped = out[j]
    return out


def _after_moves(steps: list[Step], deps: dict[str, set[str]]) -> None:
    """A step reading a column another step moves through time (``Step.moves``: its values
    at other dates, which a churn process reads period by period) runs after that step,
    unless that step needs it first (e.g. the drawn column a history realizes, read by the
    live days the history reads): then it reads the column at the feature date only."""
    def ancestors(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            for d in deps[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    for m in [s for s in steps if s.moves]:
        first = ancestors(m.name)
        for s in steps:
            if s is not m and s.reads & m.moves and s.name not in first:
                deps[s.name].add(m.name)


def build_plan(spec: "WorldSpec") -> list[Step]:
    """Steps in an order where every step runs after the steps whose columns it reads."""
    steps = _split([step for stage in spec.stages for step in stage.steps()])
    by_name = {s.name: s for s in steps}
    producer: dict[str, str] = {spec.key: ""}
    for s in steps:                           # the last writer of a column is its producer
        for col in s.writes:
            producer[col] = s.name
        producer[s.name] = s.name
    deps = {s.name: {producer[r] for r in s.reads if producer.get(r)} - {s.name} for s in steps}
    _after_moves(steps, deps)
    graph = graphlib.TopologicalSorter()
    for s in steps:
        graph.add(s.name, *sorted(deps[s.name]))
    try:
        order = list(graph.static_order())
    except graphlib.CycleError as exc:
        names = exc.args[1]                   # each a step the next one reads
        paths = [by_name[n].path for n in names if by_name[n].path]
        reads = [f"{b} reads {', '.join(cols)}" + ("" if cols == [a] else f" from {a}") if cols else
                 f"{b} reads what {a} decides"
                 for a, b in zip(names, names[1:])
                 for cols in [sorted(by_name[b].reads & (by_name[a].writes | by_name[a].moves))]]
        raise ConfigError([f"{', '.join(dict.fromkeys(paths)) or 'stages'}: columns read each other in a cycle "
                           f"({' -> '.join(names)}: {'; '.join(reads)}); drop one of the columns read"]) from None
    return [by_name[name] for name in order]
