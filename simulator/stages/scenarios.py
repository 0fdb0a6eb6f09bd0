"""Scenario assignment: first matching rule wins, in declared order (np.select).

Kind ``scenarios``: non-churners (``label`` false) get ``default``; churners the first
rule that matches, else ``fallback``. Its golden hook prefers candidate draws whose
pinned scenario follows from their pins.

The rules define a churner's scenario; the latent ``road`` column (population's
``churn_path``) is what makes partners behave as a scenario's churners do, its signature in
the histories. The two must agree: of the partners on the road named like a rule's
scenario, at least ``agreement`` must match that rule (an invariant: a rule edited away
from its road's signature fails the run); ``agreement`` is one share, or a share per road
with ``"*"`` for the others. ``shares`` are declared targets: each
scenario's share among the cohort's churners.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import Problems, did_you_mean
from ..expr import evaluate, frame_env
from ..plan import Step
from ..review.data import Bars, FigureSpec, StageReview, Target
from ..spec.checks import _is_number
from ..spec.model import Domain, RuleSpec
from ..spec.shape import Open
from ..stage import BaseStage, ParseContext, RunContext
from ..state import movers, state_at
from .churn import rules as parse_rules


AGREEMENT = {"*": 0.95}     # the agreement of every road unless declared


@dataclass(frozen=True)
class Scenarios(BaseStage):
    name: str
    kind: str
    column: str
    label: str                                # the churn label it reads
    default: str
    fallback: str
    rules: tuple[RuleSpec, ...]
    road: str | None = None                   # the latent road column whose values name scenarios
    agreement: Mapping[str, float] = field(default_factory=lambda: dict(AGREEMENT))   # least share of a road's partners its rule must match,
                                              #   per road ("*": the others)
    shares: Mapping[str, float] | None = None  # declared share of each scenario among the churners
    moves: bool = False                       # a horizon of snapshots: a scenario as of each one

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.default, *(r.name for r in self.rules), self.fallback)

    def writes(self) -> dict[str, Domain]:
        return {self.column: Domain("category", self.labels)}

    def output_columns(self) -> list[str]:
        return [self.column]

    def roles(self) -> dict[str, str]:
        return {"scenario": self.column, **({"road": self.road} if self.road else {})}

    def expressions(self) -> list[tuple[str, object, str | None]]:
        return [(f"{r.path}.when", r.expr, "bool") for r in self.rules]

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return [(r.path, r.expr.names) for r in self.rules] + [(f"{self.name}.label", frozenset([self.label]))] \
            + ([(f"{self.name}.road", frozenset([self.road]))] if self.road else [])

    def steps(self) -> list[Step]:
        reads = frozenset().union(*(r.expr.names for r in self.rules)) | {self.label}
        return [Step(self, self.name, reads, frozenset([self.column]), path=f"{self.name}.rules")]

    def run(self, step: Step, ctx: RunContext) -> None:
        """Each churner's scenario from its state when it left: the feature date's for the
        label window's churners, its last period start's for one that left in the horizon (or
        its burn-in)."""
        env, n = ctx.env, ctx.n
        env[self.column] = scenario = assign(self, env, np.asarray(env[self.label]), n)
        if not self.moves:
            return
        tl, gone = ctx.world.timeline, np.asarray(env[ctx.world.role("event_date")], dtype="datetime64[us]")
        codes = scenario.codes.copy()
        before = ~np.isnat(gone) & (gone <= tl.feature_date)           # left in the horizon or its burn-in
        period = np.timedelta64(tl.episode_days, "D")
        since = np.where(before, gone - np.timedelta64(1, "D") - tl.start, np.timedelta64(0, "D"))
        last = tl.start + (since // period) * period                    # its last period's start
        stages = movers(ctx.world.stages, frozenset().union(*(r.expr.names for r in self.rules)))
        for day in np.unique(last[before]):
            rows = before & (last == day)
            state = state_at(ctx, stages, day, gone)
            codes[rows] = assign(self, state, rows, n).codes[rows]
        env[self.column] = pd.Categorical.from_codes(codes, categories=list(self.labels))

    def varying(self) -> frozenset[str]:
        return frozenset([self.column]) if self.moves else frozenset()

    def state_at(self, ctx: RunContext, when, gone, state) -> dict[str, object]:
        """The scenario as of a snapshot on ``when``: of the partners who churn in the label
        window after it, from their state on that day."""
        return {self.column: assign(self, state, ctx.world.timeline.churns_after(when, gone), ctx.n)}

    def row_checks(self) -> list:
        import pandera.pandas as pa

        return [(frozenset([self.label, self.column]),
                 pa.Check(lambda df: df[self.label] == (df[self.column] != self.default),
                          name=f"{self.label} <=> {self.column} != {self.default}"))]

    def invariants(self, world, tables) -> list[dict]:
        partners = tables[world.table]
        healthy = (partners[self.column] == self.default).to_numpy()
        out = [{"invariant": f"{self.column} is {self.default} exactly when the partner has not churned",
                "violations": int(np.count_nonzero(healthy == partners[self.label].to_numpy(dtype=bool)))}]
        for rule, on_road, match in self._agreement(world, tables):
            k = int(on_road.sum())
            missed = int(np.count_nonzero(on_road & ~match))
            least, path = self.least(rule.name)
            out.append({"invariant": f"at least {least:.0%} ({path}) of the partners on the "
                                     f"{rule.name} road match {rule.path}.when (its signature)",
                        "violations": missed if k and missed > (1 - least) * k else 0})
        return out

    def least(self, road: str) -> tuple[float, str]:
        """The agreement a road must reach, and the config path that declares it."""
        if set(self.agreement) == {"*"}:
            return self.agreement["*"], f"{self.name}.agreement"
        key = road if road in self.agreement else "*"
        return self.agreement[key], f"{self.name}.agreement.{key}"

    def _agreement(self, world, tables):
        """(rule, on its road, matches it) for each rule whose scenario names a road."""
        partners = tables[world.table]
        if self.road is None or self.road not in partners:
            return []
        road = partners[self.road].astype(str).to_numpy()
        env = frame_env(partners)
        return [(r, road == r.name, np.asarray(evaluate(r.expr, env, len(partners)), dtype=bool))
                for r in self.rules if r.name in set(road) and r.expr.names <= set(partners.columns)]

    def review(self, world, tables) -> StageReview:
        """Each declared scenario share among the cohort's churners (4 standard errors); the
        realized shares, and each road's agreement with its scenario's rule."""
        partners = tables[world.table]
        out = []
        if self.shares:
            cohort = world.timeline.active(partners[world.role("event_date")]) if world.timeline else \
                np.ones(len(partners), dtype=bool)
            churners = partners.loc[np.asarray(cohort) & partners[self.label].to_numpy(dtype=bool), self.column]
            m = len(churners)
            counts = churners.value_counts()
            out = [Target(f"{self.name}.shares.{name}", share, counts.get(name, 0) / m if m else 0.0,
                          np.sqrt(share * (1 - share) / max(m, 1)), m, "share",
                          {"note": "share among the churners of the cohort"})
                   for name, share in self.shares.items()]
        shares = partners[self.column].value_counts(normalize=True)
        realized = {"scenario_shares": {str(k): round(float(v), 6) for k, v in shares.items()}}
        agreement = {r.name: round(float(match[on].mean()), 4) for r, on, match in self._agreement(world, tables)
                     if on.any()}
        if agreement:
            realized["road_agreement"] = agreement
        return StageReview(out, realized)

    def figures(self, world, tables) -> list[FigureSpec]:
        shares = tables[world.table][self.column].value_counts(normalize=True)
        return [Bars(heading="Scenario shares", labels=tuple(shares.index.astype(str)), values=shares.to_numpy(),
                     title="scenario shares", color="#d62728")]

    def golden_filter(self, env, pins, record_of, m):
        """Candidates whose scenario (under their pinned label and stage pins) is the pinned one."""
        if self.column not in pins or self.label not in pins:
            return None
        if not set().union(*(r.expr.names for r in self.rules)) <= set(env):
            return None                        # rules read later columns: checked at the end
        got = assign(self, env, np.asarray(env[self.label]).astype(bool), m)
        label_which = set(pins[self.label][0].tolist())
        ok, failures = np.ones(m, dtype=bool), {}
        for i, value in zip(*pins[self.column]):
            if i not in label_which:
                continue
            sel = record_of == i
            agree = np.asarray(got == value) | ~sel
            if not agree[sel].any():
                failures[i] = (f"{self.column} is pinned to {value!r}, but its pinned values lead "
                               f"the scenario rules to {sorted(set(got[sel]))}")
            ok &= agree
        return ok, failures


def assign(spec: Scenarios, env: Mapping[str, object], churned: np.ndarray, n: int) -> pd.Categorical:
    """Non-churners get the default; churners the first matching rule, else the fallback."""
    masks = [~churned] + [churned & np.asarray(evaluate(r.expr, env, n), dtype=bool) for r in spec.rules]
    codes = np.select(masks, np.arange(len(masks)), default=len(masks))
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=list(spec.labels))


class ScenariosKind:
    name = "scenarios"
    defines_entity = False
    shape = {"kind": None, "column": None, "label": None, "default": None, "fallback": None,
             "rules": Open({"when": None}), "road": None, "agreement": None, "shares": Open(None)}

    def owns(self, group: str, c: Mapping) -> dict[str, Domain]:
        names = [str(k) for k, v in (c.get("rules") or {}).items() if v is not None] \
            if isinstance(c.get("rules"), Mapping) else []
        labels = (str(c.get("default")), *names, str(c.get("fallback")))
        return {str(c.get("column")): Domain("category", labels)}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Scenarios | None:
        parsed = parse_rules(p, f"{group}.rules", c.get("rules"), numeric=False)
        for key in ("column", "label", "default", "fallback"):
            if not isinstance(c.get(key), str) or not c.get(key):
                p.add(f"{group}.{key}", f"must be a name, got {c.get(key)!r}")
        ctx.names.column(f"{group}.column", c.get("column"))
        names = [c.get("default"), *(r.name for r in parsed), c.get("fallback")]
        dupes = sorted({str(n) for n in names if names.count(n) > 1})
        if dupes:
            p.add(f"{group}.rules", f"scenario names must be unique, repeated: {dupes}")
        road, shares = c.get("road"), c.get("shares")
        if road is not None and not isinstance(road, str):
            p.add(f"{group}.road", f"must name the latent road column (population) or be null, got {road!r}")
        agreement = _agreement(p, f"{group}.agreement", c.get("agreement", AGREEMENT["*"]),
                               [r.name for r in parsed])
        if shares is not None:
            if not isinstance(shares, Mapping):
                p.add(f"{group}.shares", f"must map scenario -> share among churners, got {shares!r}")
                shares = None
            else:
                known = [*(r.name for r in parsed), str(c.get("fallback"))]
                # null: left out, as is the share of a scenario whose rule is null (network=none
                # removes Network_Contagion's rule; an experiment composed after it declares the share)
                rules = c.get("rules") if isinstance(c.get("rules"), Mapping) else {}
                removed = {str(k) for k, v in rules.items() if v is None}
                shares = {k: v for k, v in shares.items() if v is not None and str(k) not in removed}
                for name, share in shares.items():
                    if str(name) not in known:
                        p.add(f"{group}.shares.{name}", "unknown churn scenario" + did_you_mean(str(name), known))
                    elif not _is_number(share) or not 0 <= share <= 1:
                        p.add(f"{group}.shares.{name}", f"must be a share in [0, 1], got {share!r}")
                total = sum(v for v in shares.values() if _is_number(v))
                if all(_is_number(v) for v in shares.values()) and total > 1 + 1e-6:
                    p.add(f"{group}.shares", f"the churners' scenario shares must sum to at most 1, got {total:g}")
        if not all(isinstance(c.get(k), str) and c.get(k) for k in ("column", "label", "default", "fallback")) \
                or agreement is None:
            return None
        return Scenarios(group, self.name, c["column"], c["label"], c["default"], c["fallback"], tuple(parsed),
                         road if isinstance(road, str) else None, agreement,
                         {str(k): float(v) for k, v in shares.items()} if isinstance(shares, Mapping) else None,
                         ctx.timeline is not None and ctx.timeline.snapshots > 1)


def _agreement(p: Problems, path: str, value: object, scenarios: list[str]) -> dict[str, float] | None:
    """``agreement``: one share, or scenario -> share with "*" for the rest (0.95 unless
    given), as {road or "*": share}; None after adding problems."""
    def share(where: str, v: object) -> bool:
        if _is_number(v) and 0 <= v <= 1:
            return True
        p.add(where, f"must be a share in [0, 1] (of a road's partners its rule matches), got {v!r}")
        return False

    if not isinstance(value, Mapping):
        return {"*": float(value)} if share(path, value) else None
    out, ok = dict(AGREEMENT), True
    for k, v in value.items():
        if str(k) != "*" and str(k) not in scenarios:
            p.add(f"{path}.{k}", "not a churn scenario with a rule, which a road's partners agree with"
                  + did_you_mean(str(k), [*scenarios, "*"]))
            ok = False
        elif share(f"{path}.{k}", v):
            out[str(k)] = float(v)
        else:
            ok = False
    return out if ok else None


KIND = ScenariosKind()
