"""The stage plan: which step runs when, derived from what each step reads and writes.

Columns, the churn model, the network and the scenarios are nodes; an edge goes from the
step that writes a column to every step that reads it, and ``graphlib`` orders them.
One cycle is expected and resolved by scope: the churn model reads network features that
exist only for masters, while the network reads the churn labels of non-masters (its
sub pool). So the churn step is split into a pass over non-masters, then the network,
then a pass over masters ("subs are resolved first"), all without a hand-written order.
"""
from __future__ import annotations

import graphlib
from dataclasses import dataclass

from .errors import ConfigError
from .spec import ColumnSpec, HistorySpec, WorldSpec


@dataclass(frozen=True)
class Step:
    """One step of the plan: a column, or a stage ('churn', 'network', 'scenarios')."""

    kind: str
    name: str
    reads: frozenset[str]
    writes: frozenset[str]
    column: ColumnSpec | None = None
    scope: str | None = None      # churn passes: 'outside' / 'inside' the masters, or None: all
    history: HistorySpec | None = None


def _nodes(spec: WorldSpec) -> list[Step]:
    ch, net, sc = spec.churn, spec.network, spec.scenarios
    steps = [Step("column", c.name, c.reads, frozenset([c.name]), column=c) for c in spec.columns]
    churn_reads = frozenset().union(*(r.expr.names for r in ch.rules))
    churn_writes = frozenset([ch.label, ch.probability, ch.date_column])
    net_writes = frozenset([net.health, net.recent_churn])
    if churn_reads & net_writes:
        outside = churn_reads - net_writes | {net.masters}
        steps.append(Step("churn", "churn@outside", outside, churn_writes, scope="outside"))
        steps.append(Step("network", "network", frozenset([net.masters, "churn@outside"]), net_writes))
        steps.append(Step("churn", "churn@inside", churn_reads | {net.masters, "churn@outside"},
                          churn_writes, scope="inside"))
    else:
        steps.append(Step("churn", "churn", churn_reads, churn_writes))
        steps.append(Step("network", "network", frozenset([net.masters, ch.label, ch.date_column]),
                          net_writes))
    if spec.activity is not None:
        # a history writes the features computed from it that no other step draws; the
        # ones drawn as partners columns (its targets) it realizes and re-computes
        drawn = {c.name for c in spec.columns}
        for h in spec.activity.histories:
            feats = [f for f in spec.activity.features if f.history == h.name]
            reads = h.reads.union(*(f.column.reads - f.aggregates for f in feats))
            writes = frozenset(f.name for f in feats if f.name not in drawn)
            steps.append(Step("history", f"history:{h.name}", reads, writes, history=h))
    sc_reads = frozenset().union(*(r.expr.names for r in sc.rules)) | {ch.label}
    steps.append(Step("scenarios", "scenarios", sc_reads, frozenset([sc.column])))
    if spec.interventions is not None:
        steps.append(Step("interventions", "interventions",
                          spec.interventions.reads | {ch.probability}, frozenset()))
    return steps


def build_plan(spec: WorldSpec) -> list[Step]:
    """Steps in an order where every step runs after the steps whose columns it reads."""
    steps = _nodes(spec)
    by_name = {s.name: s for s in steps}
    producer: dict[str, str] = {spec.id.column: ""}
    for s in steps:                           # the last writer of a column is its producer
        for col in s.writes:
            producer[col] = s.name
        producer[s.name] = s.name
    graph = graphlib.TopologicalSorter()
    for s in steps:
        deps = {producer[r] for r in s.reads if producer.get(r)} - {s.name}
        graph.add(s.name, *sorted(deps))
    try:
        order = list(graph.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        paths = [by_name[n].column.path for n in exc.args[1] if by_name[n].column]
        raise ConfigError([f"{', '.join(dict.fromkeys(paths)) or 'stages'}: "
                           f"columns read each other in a cycle ({cycle})"]) from None
    return [by_name[name] for name in order]
