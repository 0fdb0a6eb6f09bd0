"""Interventions and their ground truth, from a declared treatment-effect table.

Kind ``interventions``. Per partner: the expected effect of every declared type (first
matching row of its table; the uplift ground truth). Per intervention: a type from the
mix, the expected effect plus normal noise, clipped (``uplift_signal``); the final churn
probability clip(base + effect, 0, 1) with base the churn model's probability (the
column ``base`` names); the outcome drawn from it. Whole arrays throughout; loops run
over types and table rows only.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import ids
from ..dates import days_before
from ..distributions import draw_categorical
from ..errors import Problems, did_you_mean
from ..expr import Expr, evaluate
from ..plan import Step
from ..spec.checks import _check_weights, _compile, _int, _is_number, _pair
from ..spec.model import Domain
from ..spec.shape import Each, Open
from ..stage import BaseStage, ParseContext, RunContext


@dataclass(frozen=True)
class EffectRow:
    """One row of a treatment-effect table: a condition (None: always) and its effect."""

    path: str
    expr: Expr | None
    effect: float


@dataclass(frozen=True)
class Interventions(BaseStage):
    name: str
    kind: str
    table_name: str
    truth_table: str
    base: str                                 # the column of each partner's churn probability
    per_partner: tuple[int, int]
    days_before: tuple[int, int]
    outcome_after_days: int
    noise: tuple[float, float]                # (loc, scale) of the normal noise
    clip: tuple[float, float]
    churned: str
    retained: str
    types: tuple[str, ...]
    shares: np.ndarray
    effects: Mapping[str, tuple[EffectRow, ...]]

    @property
    def effect_reads(self) -> frozenset[str]:
        return frozenset().union(*(r.expr.names for rows in self.effects.values()
                                   for r in rows if r.expr is not None))

    def truth_column(self, kind: str) -> str:
        return f"effect_{kind}"

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return [(r.path, r.expr.names) for rows in self.effects.values() for r in rows if r.expr is not None] \
            + [(f"{self.name}.base", frozenset([self.base]))]

    def steps(self) -> list[Step]:
        return [Step(self, self.name, self.effect_reads | {self.base}, frozenset(), path=self.name)]

    def run(self, step: Step, ctx: RunContext) -> None:
        world, pid = ctx.world, ctx.env[ctx.world.key]
        base = np.asarray(ctx.env[self.base], dtype=float)
        expected = expected_effects(self, ctx.env, ctx.n)
        drawn = draw(self, expected, base, lambda name: ctx.rng("interventions", name))
        date = days_before(world.as_of, drawn.days_before)
        ctx.tables[self.table_name] = pd.DataFrame({
            "intervention_id": ids.uuid4s(ctx.rng("interventions", "id"), drawn.partner.size),
            world.key: pid.take(drawn.partner),
            "intervention_type": pd.Categorical.from_codes(drawn.kind, categories=list(self.types)),
            "outcome": pd.Categorical.from_codes(drawn.churned.astype(np.int8),
                                                 categories=[self.retained, self.churned]),
            "uplift_signal": np.round(drawn.effect, 3),      # the seed's DECIMAL(5,3)
            "intervention_date": date,
            "outcome_recorded_at": date + np.timedelta64(self.outcome_after_days, "D"),
        })
        truth = {world.key: pid, "base_churn_probability": base}
        truth.update({self.truth_column(k): expected[:, j] for j, k in enumerate(self.types)})
        ctx.tables[self.truth_table] = pd.DataFrame(truth)

    def tables(self) -> tuple[str, ...]:
        return (self.table_name, self.truth_table)

    def ddl(self) -> dict[str, str]:
        return {self.table_name: "interventions", self.truth_table: "uplift_truth"}

    def schemas(self, world, tables) -> dict:
        import pandera.pandas as pa
        import pyarrow
        import pyarrow.compute as pc

        from ..schemas import arrow_check, member_of

        partners = tables[world.table]
        lo = world.as_of - np.timedelta64(self.days_before[1], "D")
        hi = world.as_of - np.timedelta64(self.days_before[0], "D")
        after = np.timedelta64(self.outcome_after_days, "D")
        interventions = pa.DataFrameSchema({
            "intervention_id": pa.Column("str", unique=True),
            world.key: pa.Column("str", checks=member_of(partners[world.key], "is a partner")),
            "intervention_type": pa.Column("category", checks=pa.Check.isin(list(self.types))),
            "outcome": pa.Column("category", checks=pa.Check.isin([self.retained, self.churned])),
            "uplift_signal": pa.Column("float64", checks=pa.Check.in_range(*self.clip)),
            "intervention_date": pa.Column("datetime64[us]", checks=pa.Check.in_range(lo, hi)),
            "outcome_recorded_at": pa.Column("datetime64[us]"),
        }, strict=True, ordered=True, name=self.table_name, checks=[
            pa.Check(lambda df: df["outcome_recorded_at"] - df["intervention_date"] == after,
                     name=f"outcome recorded {self.outcome_after_days} days after the intervention"),
        ])
        pids = pyarrow.array(partners[world.key], type=pyarrow.string())

        def same_partner(values: pyarrow.Array) -> pyarrow.Array:   # implies the FK and uniqueness
            if len(values) != len(pids):
                return pyarrow.array([False] * len(values))
            return pc.equal(values, pids)

        cols = {
            world.key: pa.Column("str", checks=arrow_check(f"row i is {world.table} row i", same_partner)),
            "base_churn_probability": pa.Column("float64", checks=pa.Check.in_range(0, 1)),
        }
        for kind in self.types:
            declared = [r.effect for r in self.effects[kind]] + ([] if self.effects[kind][-1].expr is None else [0.0])
            cols[self.truth_column(kind)] = pa.Column("float64", checks=pa.Check.isin(declared))
        truth = pa.DataFrameSchema(cols, strict=True, ordered=True, name=self.truth_table)
        return {self.table_name: interventions, self.truth_table: truth}

    def targets(self, world, tables) -> list[dict]:
        """The mix, and the mean realized effect of every row of the effect table."""
        import pyarrow
        import pyarrow.compute as pc

        from ..stats import share_targets, target

        table, partners = tables[self.table_name], tables[world.table]
        out = share_targets(f"{self.name}.mix", self.types, self.shares, table["intervention_type"])
        reads = self.effect_reads & set(partners.columns)
        env = {c: (partners[c].array if isinstance(partners[c].dtype, pd.CategoricalDtype) else partners[c].to_numpy())
               for c in reads}
        row_of = {}
        n = len(partners)
        for kind in self.types:
            rows = self.effects[kind]
            if any(r.expr is not None and not r.expr.names <= reads for r in rows):
                continue                          # reads a helper column that is not in the table
            row_of[kind] = matched_row(rows, env, n)
        pidx = pc.index_in(pyarrow.array(table[world.key]), value_set=pyarrow.array(partners[world.key]))
        pidx = pidx.to_numpy(zero_copy_only=False)
        loc, scale = self.noise
        for kind, rows_idx in row_of.items():
            of_kind = np.asarray(table["intervention_type"] == kind)
            which = rows_idx[pidx[of_kind]]
            signal = table.loc[of_kind, "uplift_signal"].to_numpy()
            for i, row in enumerate(self.effects[kind]):
                x = signal[which == i]
                t = target(f"{row.path}.effect", row.effect + loc, x.mean() if x.size else 0,
                           scale / np.sqrt(max(x.size, 1)), x.size, "mean")
                out.append({**t, "row": row.path.removeprefix(f"{self.name}.effects.")})
        return out

    def figures(self, world, tables, stats) -> list:
        from ..report import figure, png

        rows = [t for t in stats["targets"] if t.get("stage") == self.name and "row" in t]
        if not rows:
            return []
        fig = figure(figsize=(8, 3.5))
        ax = fig.subplots()
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [t["declared"] for t in rows], 0.4, label="declared", color="#7f7f7f")
        ax.bar(x + 0.2, [t["realized"] or 0 for t in rows], 0.4, label="realized mean", color="#2ca02c")
        ax.set_xticks(x, [t["row"] for t in rows], rotation=45, fontsize=7)
        ax.set(title="uplift by intervention type and table row (segment)", ylabel="effect on churn probability")
        ax.legend(fontsize=7)
        return [("Uplift", png(fig))]


def matched_row(rows: tuple[EffectRow, ...], env: Mapping[str, object], n: int) -> np.ndarray:
    """Per partner, the index of the first effect row whose condition holds (-1: none)."""
    masks = [np.ones(n, dtype=bool) if r.expr is None
             else np.asarray(evaluate(r.expr, env, n), dtype=bool) for r in rows]
    return np.select(masks, np.arange(len(rows)), default=-1)


def expected_effects(spec: "Interventions", env: Mapping[str, object], n: int) -> np.ndarray:
    """(n, types) matrix: each partner's declared effect of each intervention type
    (0 where no row matches)."""
    out = np.zeros((n, len(spec.types)))
    for j, kind in enumerate(spec.types):
        rows = spec.effects[kind]
        effects = np.array([r.effect for r in rows] + [0.0])     # index -1 -> no match
        out[:, j] = effects[matched_row(rows, env, n)]
    return out


@dataclass(frozen=True)
class Drawn:
    partner: np.ndarray         # row index of the partner of each intervention
    kind: np.ndarray            # index into spec.types
    effect: np.ndarray          # realized effect (uplift_signal)
    churned: np.ndarray         # outcome
    days_before: np.ndarray     # intervention_date = as_of - days_before


def draw(spec: "Interventions", expected: np.ndarray, base: np.ndarray,
         rng: Callable[[str], np.random.Generator]) -> Drawn:
    """Draw every intervention of every partner; ``rng(name)`` gives a named stream."""
    n = base.size
    counts = rng("count").integers(spec.per_partner[0], spec.per_partner[1] + 1, n)
    partner = np.repeat(np.arange(n), counts)
    m = partner.size
    kind = draw_categorical(rng("type"), spec.shares, None, m)
    loc, scale = spec.noise
    effect = np.clip(expected[partner, kind] + rng("noise").normal(loc, scale, m), *spec.clip)
    final = np.clip(base[partner] + effect, 0.0, 1.0)
    churned = rng("outcome").random(m) < final
    days = rng("date").integers(spec.days_before[0], spec.days_before[1] + 1, m)
    return Drawn(partner, kind.astype(np.int32), effect, churned, days)


def _effect_rows(p: Problems, path: str, rows: Any) -> tuple[EffectRow, ...] | None:
    if not isinstance(rows, (list, tuple)) or not rows:
        p.add(path, "must be a non-empty list of {when: <condition>, effect: <number>} rows")
        return None
    out = []
    for i, row in enumerate(rows):
        rpath = f"{path}[{i}]"
        if not isinstance(row, Mapping) or not _is_number(row.get("effect")):
            p.add(rpath, f"needs a numeric 'effect' (and optionally 'when'), got {row!r}")
            continue
        expr = _compile(p, f"{rpath}.when", row["when"]) if "when" in row else None
        if "when" in row and expr is None:
            continue
        if expr is None and i < len(rows) - 1:
            p.add(rpath, "a row without 'when' matches everything, so it must be the last row")
        out.append(EffectRow(rpath, expr, float(row["effect"])))
    return tuple(out)


class InterventionsKind:
    name = "interventions"
    defines_entity = False
    shape = {"kind": None, "table": None, "truth_table": None, "base": None,
             "per_partner": {"low": None, "high": None}, "days_before": {"low": None, "high": None},
             "outcome_after_days": None, "noise": {"loc": None, "scale": None}, "clip": {"min": None, "max": None},
             "outcomes": {"churned": None, "retained": None}, "mix": Open(None),
             "effects": Open(Each({"when": None, "effect": None}))}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Interventions | None:
        before = len(p.items)
        mix = _check_weights(p, f"{group}.mix", c.get("mix"))
        effects_cfg = c.get("effects")
        effects: dict[str, tuple[EffectRow, ...]] = {}
        if not isinstance(effects_cfg, Mapping):
            p.add(f"{group}.effects", "must map each intervention type to its effect rows")
            effects_cfg = {}
        for kind, rows in effects_cfg.items():
            path = f"{group}.effects.{kind}"
            if mix is not None and str(kind) not in mix:
                p.add(path, f"unknown intervention type {kind!r}: not in {group}.mix" + did_you_mean(str(kind), mix))
                continue
            parsed = _effect_rows(p, path, rows)
            if parsed is not None:
                effects[str(kind)] = parsed
        for kind in (mix or {}):
            if kind not in effects_cfg:
                p.add(f"{group}.effects", f"no effect rows for {kind!r} (declared in {group}.mix)")
        per = _pair(p, f"{group}.per_partner", c.get("per_partner"), 0)
        days = _pair(p, f"{group}.days_before", c.get("days_before"), 0)
        after = _int(p, f"{group}.outcome_after_days", c.get("outcome_after_days"), 0)
        noise = c.get("noise") or {}
        loc, scale = noise.get("loc", 0.0), noise.get("scale")
        if not _is_number(loc) or not _is_number(scale) or scale < 0:
            p.add(f"{group}.noise", f"needs loc (a number) and scale (a number >= 0), got {noise!r}")
        clip = c.get("clip") or {}
        lo, hi = clip.get("min"), clip.get("max")
        if not (_is_number(lo) and _is_number(hi)):
            p.add(f"{group}.clip", f"needs numeric min and max, got {clip!r}")
        elif lo >= hi:
            p.add(f"{group}.clip", f"min {lo} must be below max {hi}")
        outcomes = c.get("outcomes") or {}
        for key in ("churned", "retained"):
            if not isinstance(outcomes.get(key), str) or not outcomes.get(key):
                p.add(f"{group}.outcomes.{key}", f"must be an outcome label, got {outcomes.get(key)!r}")
        if not isinstance(c.get("base"), str):
            p.add(f"{group}.base", f"must name the column of each partner's churn probability, got {c.get('base')!r}")
        if len(p.items) > before:
            return None
        return Interventions(group, self.name, str(c.get("table", "interventions")),
                             str(c.get("truth_table", "uplift_truth")), c["base"], per, days, after,
                             (float(loc), float(scale)), (float(lo), float(hi)),
                             outcomes["churned"], outcomes["retained"], tuple(mix),
                             np.array(list(mix.values())), effects)


KIND = InterventionsKind()
