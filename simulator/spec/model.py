"""The typed spec: frozen dataclasses that stages read instead of the Hydra config."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..expr import Expr

@dataclass(frozen=True)
class Domain:
    """What values a column holds: its dtype and, for labels, the allowed categories."""

    dtype: str                                # float | int | bool | category | datetime | any
    categories: tuple = ()
    nullable: bool = False


@dataclass(frozen=True)
class ColumnSpec:
    """One declared partners column (or a hidden helper with keep=False)."""

    name: str
    path: str
    kind: str                                 # sample | categorical | derive | bins | lookup | date
    reads: frozenset[str]
    domain: Domain
    keep: bool = True
    sampler: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # scalar, or per-`by` array
    by: str | None = None
    by_keys: tuple = ()                       # categories of `by`, in the order of params' arrays
    weights: np.ndarray | None = None         # categorical: (k,) or (len(by_keys), k)
    expr: Expr | None = None
    source: str | None = None                 # bins / lookup: the column read
    edges: tuple[tuple[str, float], ...] = ()  # bins: (label, lower edge) ascending; lookup: table
    clip: tuple[float | None, float | None] = (None, None)
    round: int | str | None = None            # decimals, or "floor"
    cast: str | None = None                   # int | float | bool


@dataclass(frozen=True)
class RuleSpec:
    name: str
    path: str
    expr: Expr
    weight: float = 0.0


@dataclass(frozen=True)
class ChurnSpec:
    label: str
    probability: str
    target_rate: float
    rules: tuple[RuleSpec, ...]
    date_column: str
    date: ColumnSpec                          # days before as_of, drawn per churner
    not_before: str | None = None             # a date column the churn date cannot precede


@dataclass(frozen=True)
class NetworkSpec:
    table: str
    masters: str
    fanout: tuple[int, int]
    recruited_days: tuple[int, int]
    recent_days: int
    health: str
    recent_churn: str
    not_before: str | None = None             # a date column (of master and sub) recruitment cannot precede


@dataclass(frozen=True)
class ScenarioSpec:
    column: str
    default: str
    fallback: str
    rules: tuple[RuleSpec, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.default, *(r.name for r in self.rules), self.fallback)


@dataclass(frozen=True)
class EffectRow:
    """One row of a treatment-effect table: a condition (None: always) and its effect."""

    path: str
    expr: Expr | None
    effect: float


@dataclass(frozen=True)
class InterventionSpec:
    table: str
    truth_table: str
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
    def reads(self) -> frozenset[str]:
        return frozenset().union(*(r.expr.names for rows in self.effects.values()
                                   for r in rows if r.expr is not None))

    def truth_column(self, kind: str) -> str:
        return f"effect_{kind}"


@dataclass(frozen=True)
class GoldenRecord:
    partner_id: str
    path: str
    row: int                                  # position of the generated row it replaces
    pins: Mapping[str, Any]


@dataclass(frozen=True)
class IdSpec:
    column: str
    prefix: str
    width: int


@dataclass(frozen=True)
class DbSpec:
    """Where the tables are loaded: kind sqlite | postgres | none."""

    kind: str
    target: str | None = None                 # sqlite: file path; postgres: SQLAlchemy URL
    mode: str = "replace"                     # replace | append


@dataclass(frozen=True)
class WorldSpec:
    """Everything a run needs, validated. Built once by :func:`load_spec`."""

    n: int
    seed: int
    as_of: np.datetime64
    id: IdSpec
    columns: tuple[ColumnSpec, ...]
    churn: ChurnSpec
    network: NetworkSpec
    scenarios: ScenarioSpec
    golden: tuple[GoldenRecord, ...]
    golden_candidates: int
    interventions: InterventionSpec | None
    formats: tuple[str, ...]
    output_dir: str | None
    db: DbSpec
    report: bool
    resolved: Mapping[str, Any]               # the resolved config, for hashing and reports
    activity: "ActivitySpec | None" = None    # raw histories and the features computed from them
    engineered: "EngineeredSpec | None" = None  # the model-ready table

    @property
    def history_tables(self) -> list[str]:
        """Tables of raw histories (files only: written in activity.formats, not loaded)."""
        return [h.table for h in self.activity.histories] if self.activity and self.activity.write else []

    @property
    def history_features(self) -> list["FeatureSpec"]:
        """Features computed from histories that are not also drawn partners columns."""
        if self.activity is None:
            return []
        drawn = {c.name for c in self.columns}
        return [f for f in self.activity.features if f.name not in drawn]

    def domains(self) -> dict[str, Domain]:
        """Every column of the partners table (and helpers) -> its domain."""
        return _domains(self)

    @property
    def output_columns(self) -> list[str]:
        """The partners table's columns in order."""
        stage_cols = [self.churn.label, self.churn.date_column, self.scenarios.column,
                      self.network.health, self.network.recent_churn]
        return [self.id.column, *(c.name for c in self.columns if c.keep),
                *(f.name for f in self.history_features), *stage_cols]


def _domains(spec: WorldSpec) -> dict[str, Domain]:
    out = {spec.id.column: Domain("str")}
    out.update({c.name: c.domain for c in spec.columns})
    out.update({f.name: f.column.domain for f in spec.history_features})
    out.update(_stage_domains(spec.churn, spec.network, spec.scenarios))
    return out


def _stage_domains(churn: ChurnSpec, net: NetworkSpec, scen: ScenarioSpec) -> dict[str, Domain]:
    return {
        churn.label: Domain("bool"),
        churn.probability: Domain("float"),
        churn.date_column: Domain("datetime", nullable=True),
        net.health: Domain("float", nullable=True),
        net.recent_churn: Domain("int", nullable=True),
        scen.column: Domain("category", scen.labels),
    }


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class HistorySpec:
    """One raw history (a table): its kind, per-partner inputs and options."""

    name: str
    path: str
    kind: str
    table: str
    inputs: Mapping[str, ColumnSpec]          # drawn per partner, or a partners column (kind 'derive')
    options: Mapping[str, Any]
    reads: frozenset[str]                     # partners columns the inputs and option exprs read


@dataclass(frozen=True)
class FeatureSpec:
    """A partners column computed from one history's aggregates (and partners columns)."""

    name: str
    path: str
    history: str
    column: ColumnSpec                        # kind 'derive': expr, round, dtype, clip
    aggregates: frozenset[str]                # the history's aggregates it reads

    @property
    def aggregate(self) -> str | None:
        """The aggregate this feature is, when its expression is just that name (the
        features a golden pin can be realized for, and stats.json can measure)."""
        source = self.column.expr.source.strip()
        return source if source in self.aggregates else None


@dataclass(frozen=True)
class ActivitySpec:
    histories: tuple[HistorySpec, ...]
    features: tuple[FeatureSpec, ...]
    formats: tuple[str, ...]                  # the history tables' file formats
    write: bool                               # False: reduce histories to features, keep no table
    write_auto: bool = True                   # write was 'auto' (decided by auto_write_max)
    auto_write_max: int = 250_000             # partners up to which 'auto' writes


@dataclass(frozen=True)
class EngineeredSpec:
    """The model-ready table: the id, the features, and carried labels."""

    table: str
    features: tuple[str, ...]
    carry: tuple[str, ...]
