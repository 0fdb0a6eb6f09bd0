"""Run the plan: spec in, validated tables out. No I/O here (that is sinks/)."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import ids
from .errors import ConfigError
from .expr import evaluate
from .histories import KINDS
from .plan import Step, build_plan
from .spec import Domain, FeatureSpec, HistorySpec, WorldSpec
from .stages import churn, columns, golden, interventions, network, scenarios
from .stages.golden import Golden, equal
from .streams import stream

BLOCK = 16_384       # partners generated and reduced at a time; fixed, so never changes the data
WORKERS = 2          # blocks in flight at once

@dataclass
class Result:
    """The generated tables plus facts about the run (intercept, step timings)."""

    tables: dict[str, pd.DataFrame]
    facts: dict[str, object] = field(default_factory=dict)


class _Run:
    """The state of one generation: the columns produced so far, by name."""

    def __init__(self, spec: WorldSpec, gold: Golden):
        self.spec, self.gold, self.n = spec, gold, spec.n
        ch, net = spec.churn, spec.network
        self.env: dict[str, object] = {
            spec.id.column: ids.partner_ids(spec.id.prefix, spec.id.width, spec.n),
            ch.label: np.zeros(self.n, dtype=bool),
            ch.probability: np.full(self.n, np.nan),
            ch.date_column: np.full(self.n, np.datetime64("NaT", "us")),
            net.health: np.full(self.n, np.nan),       # null until the network step
            net.recent_churn: np.full(self.n, np.nan),
        }
        self.facts: dict[str, object] = {}
        self.edges: network.Edges | None = None
        self.extra_tables: dict[str, pd.DataFrame] = {}

    def rng(self, *names: str) -> np.random.Generator:
        return stream(self.spec.seed, *names)

    # ---------------------------------------------------------------- steps
    def column(self, step: Step) -> None:
        col = step.column
        values = columns.produce(col, self.env, self.n, self.rng("column", col.name), self.spec.as_of)
        self.env[col.name] = self.gold.apply(col.name, values)

    def churn(self, step: Step) -> None:
        spec, env, n = self.spec.churn, self.env, self.n
        masters = np.asarray(env[self.spec.network.masters], dtype=bool)
        rows = {"outside": ~masters, "inside": masters}.get(step.scope, np.ones(n, dtype=bool))
        scores = churn.score(spec.rules, env, n)
        latent = scores + self.rng("churn", "noise").logistic(size=n)
        if step.scope != "inside":             # calibrate on the first (or only) pass
            self.facts["churn_intercept"] = churn.calibrate(latent[rows], spec.target_rate)
        intercept = self.facts["churn_intercept"]
        label = env[spec.label].copy()
        label[rows] = latent[rows] + intercept > 0
        label = self.gold.apply(spec.label, label)
        prob = env[spec.probability].copy()
        prob[rows] = churn.probability(scores[rows], intercept)
        days = columns.produce(spec.date, {}, n, self.rng("churn", "date"), self.spec.as_of)
        when = env[spec.date_column].copy()
        churned_on = columns.days_before(self.spec.as_of, days[rows])
        if spec.not_before:                    # nobody leaves before they joined
            churned_on = np.maximum(churned_on, env[spec.not_before][rows])
        when[rows] = np.where(label[rows], churned_on, np.datetime64("NaT", "us"))
        env[spec.label], env[spec.probability], env[spec.date_column] = label, prob, when

    def network(self, step: Step) -> None:
        spec, env, ch = self.spec.network, self.env, self.spec.churn
        masters = np.asarray(env[spec.masters], dtype=bool)
        churned = np.asarray(env[ch.label], dtype=bool)
        recent = churned & (env[ch.date_column] >= columns.days_before(self.spec.as_of, spec.recent_days))
        pinned = [network.GoldenMaster(r.row, r.partner_id, r.path, r.pins.get(spec.health),
                                       r.pins.get(spec.recent_churn))
                  for r in self.spec.golden
                  if spec.health in r.pins or spec.recent_churn in r.pins]
        self.edges = network.build(spec, masters, churned, recent, self.rng("network", "tree"), pinned)
        env[spec.health], env[spec.recent_churn] = network.features(
            self.edges, self.n, masters, churned, recent)

    def scenarios(self, step: Step) -> None:
        sc = self.spec.scenarios
        self.env[sc.column] = scenarios.assign(sc, self.env, np.asarray(self.env[self.spec.churn.label]),
                                               self.n)

    def history(self, step: Step) -> None:
        """Generate one raw history block by block, reduce each block to its features, and
        keep the rows only if the tables are written."""
        h, act, env, n = step.history, self.spec.activity, self.env, self.n
        kind = KINDS[h.kind]
        inputs = {k: columns.produce(col, env, n, self.rng("history", h.name, k), self.spec.as_of)
                  for k, col in h.inputs.items()}
        inputs.update({c: env[c] for c in h.reads if c not in inputs})
        feats = [f for f in act.features if f.history == h.name]
        partner_reads = set().union(*(f.column.reads - f.aggregates for f in feats))
        pins = self._history_pins(h, feats)
        id_dtype = self.id_dtype if act.write else None

        def block(start: int) -> tuple[dict[str, np.ndarray], pd.DataFrame | None]:
            stop = min(n, start + BLOCK)
            data = kind.generate(h, {k: v[start:stop] for k, v in inputs.items()},
                                 lambda part: self.rng("history", h.name, part, str(start // BLOCK)), act.write)
            for row, fix, pin, decimals, why in pins:
                if start <= row < stop:
                    try:
                        fix(h, data, row - start, pin, decimals)
                    except ValueError as exc:
                        raise ConfigError([f"{why}, but {h.path} cannot realize it: {exc}"]) from None
            fenv = {**kind.reduce(h, data), **{c: env[c][start:stop] for c in partner_reads}}
            values = {f.name: columns.finish(f.column, evaluate(f.column.expr, fenv, stop - start)) for f in feats}
            return values, kind.frame(h, data, np.arange(start, stop), id_dtype, self.spec.as_of) if act.write else None

        # blocks have their own streams, so two at a time (numpy's samplers and array
        # kernels release the GIL) give the same data as one at a time
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            done = list(pool.map(block, range(0, n, BLOCK)))
        parts = {f.name: [values[f.name] for values, _ in done] for f in feats}
        frames = [frame for _, frame in done]
        drawn = {c.name for c in self.spec.columns}
        for f in feats:
            values = np.concatenate(parts[f.name]) if parts[f.name] else np.zeros(0)
            if f.name in drawn:
                self._check_realized(h, f.name, values)
            else:
                env[f.name] = values
        if act.write:
            self.extra_tables[h.table] = pd.concat(frames, ignore_index=True)

    def _history_pins(self, h: HistorySpec, feats: list[FeatureSpec]) -> list[tuple]:
        """Golden pins on features this history must realize: (row, fixer, pin, decimals, why)."""
        fixers = KINDS[h.kind].realize
        out = []
        for rec in self.spec.golden:
            for f in feats:
                agg = f.aggregate
                if f.name in rec.pins and agg in fixers:
                    decimals = f.column.round if isinstance(f.column.round, int) else 9
                    out.append((rec.row, fixers[agg], float(rec.pins[f.name]), decimals,
                                f"{rec.path} ({rec.partner_id}): {f.name} is pinned to {rec.pins[f.name]!r}"))
        return out

    def _check_realized(self, h: HistorySpec, name: str, computed: np.ndarray) -> None:
        """A feature that is also a drawn column must come out of its history unchanged."""
        drawn = np.asarray(self.env[name])
        same = np.isclose(computed, drawn, rtol=0, atol=1e-9) if drawn.dtype.kind == "f" else computed == drawn
        if not np.all(same):
            bad = np.flatnonzero(~same)
            pid = self.env[self.spec.id.column][bad[0]]
            raise ConfigError([f"{h.path}: {name} computed from the history differs from the drawn column "
                               f"for {bad.size} partners (e.g. {pid}: drawn {drawn[bad[0]]!r}, computed "
                               f"{computed[bad[0]]!r}); the history cannot realize such values: bound the "
                               f"column (e.g. clip) or widen the history"])

    @functools.cached_property
    def id_dtype(self) -> pd.CategoricalDtype:
        """partner_id of the history tables: a categorical over all ids, built once."""
        return pd.CategoricalDtype(pd.Index(self.env[self.spec.id.column]))

    def interventions(self, step: Step) -> None:
        spec, pid = self.spec.interventions, self.env[self.spec.id.column]
        base = np.asarray(self.env[self.spec.churn.probability], dtype=float)
        expected = interventions.expected_effects(spec, self.env, self.n)
        drawn = interventions.draw(spec, expected, base, lambda name: self.rng("interventions", name))
        date = columns.days_before(self.spec.as_of, drawn.days_before)
        self.extra_tables[spec.table] = pd.DataFrame({
            "intervention_id": ids.uuid4s(self.rng("interventions", "id"), drawn.partner.size),
            "partner_id": pid.take(drawn.partner),
            "intervention_type": pd.Categorical.from_codes(drawn.kind, categories=list(spec.types)),
            "outcome": pd.Categorical.from_codes(drawn.churned.astype(np.int8),
                                                 categories=[spec.retained, spec.churned]),
            "uplift_signal": np.round(drawn.effect, 3),      # the seed's DECIMAL(5,3)
            "intervention_date": date,
            "outcome_recorded_at": date + np.timedelta64(spec.outcome_after_days, "D"),
        })
        truth = {"partner_id": pid, "base_churn_probability": base}
        truth.update({spec.truth_column(k): expected[:, j] for j, k in enumerate(spec.types)})
        self.extra_tables[spec.truth_table] = pd.DataFrame(truth)

    # ---------------------------------------------------------------- outputs
    def check_golden(self) -> None:
        problems = []
        for rec in self.spec.golden:
            for col, pin in rec.pins.items():
                got = self.env[col][rec.row]
                if not bool(equal(np.asarray([got], dtype=object if isinstance(got, str) else None), pin)[0]):
                    problems.append(f"{rec.path} ({rec.partner_id}): {col} is pinned to {pin!r}, "
                                    f"but the generated world gives {got!r}")
        if problems:
            raise ConfigError(problems)

    def partners(self) -> pd.DataFrame:
        domains = self.spec.domains()
        return pd.DataFrame({c: _as_series(self.env[c], domains[c]) for c in self.spec.output_columns})

    def _recruited_at(self) -> np.ndarray:
        """as_of minus the drawn days, and never before master or sub existed."""
        e, net = self.edges, self.spec.network
        when = columns.days_before(self.spec.as_of, e.days_before)
        if net.not_before:
            joined = self.env[net.not_before]
            when = np.maximum(when, np.maximum(joined[e.master], joined[e.sub]))
        return when

    def relationships(self) -> pd.DataFrame:
        e, pid = self.edges, self.env[self.spec.id.column]
        m = e.master.size
        return pd.DataFrame({
            "relationship_id": ids.uuid4s(self.rng("network", "relationship_id"), m),
            "master_affiliate_id": pid.take(e.master),
            "sub_affiliate_id": pid.take(e.sub),
            "recruited_at": self._recruited_at(),
            "is_active": np.ones(m, dtype=bool),
        })


def _as_series(values: object, domain: Domain) -> object:
    """Internal arrays -> the table's dtypes (labels as category, nullable ints as Int64)."""
    if domain.dtype == "str":
        return values
    if domain.dtype == "category":
        return values if isinstance(values, pd.Categorical) else pd.Categorical(values)
    if domain.dtype == "int" and domain.nullable:
        arr = np.asarray(values, dtype=float)
        return pd.arrays.IntegerArray(np.nan_to_num(arr).astype(np.int64), np.isnan(arr))
    return values


STEP_KINDS: dict[str, Callable[[_Run, Step], None]] = {
    "column": _Run.column, "churn": _Run.churn, "network": _Run.network, "scenarios": _Run.scenarios,
    "interventions": _Run.interventions, "history": _Run.history,
}


def simulate(spec: WorldSpec) -> Result:
    """Generate every table of the world described by ``spec``."""
    plan = build_plan(spec)
    gold = golden.prepare(spec, plan)
    run = _Run(spec, gold)
    timings: dict[str, float] = {}
    for step in plan:
        start = time.perf_counter()
        STEP_KINDS[step.kind](run, step)
        timings[step.name] = time.perf_counter() - start
    run.check_golden()
    partners = run.partners()
    tables = {"partners": partners, spec.network.table: run.relationships(), **run.extra_tables}
    if spec.engineered is not None:
        eng = spec.engineered
        # a column selection: with copy-on-write it shares the partners' arrays, no copy
        tables[eng.table] = partners[[spec.id.column, *eng.features, *eng.carry]]
    run.facts.update(step_seconds=timings, plan=[s.name for s in plan])
    return Result(tables, run.facts)
