"""What a stage hands the review: plain records of numbers, arrays, names and strings.

The stages generate and check; the review (``simulator.review``) measures and draws. A
stage never imports the review: it returns these records from ``Reviewed.review`` (declared
targets beside realized values, headline values for stats.json) and ``Reviewed.figures``
(what to draw, by name of a figure kind below), and the review turns them into
stats.json's rows and report.html's panels. This module imports nothing heavier than
numpy and pandas, so a stage may import it at module level.

Three kinds of target, each with its miss rule (``review.stats``): a :class:`Target`
(realized within 4 standard errors, or 0.005), a :class:`MeasuredTarget` (a feature's
mean measured from its values, allowed a tenth of the declared sd more) and a
:class:`TailTarget` (a heavy tail's top-20% share, within 2 points). Three measures the
review computes for ``realized``, each with its standard error: :class:`Rate`,
:class:`Auc` and :class:`FeatureAucs`. Every figure is a
frozen dataclass with a ``heading`` (its panel's title); the review draws it by its type,
never by inspecting its contents.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..histories import Panel

REFERENCE_ROWS = 100_000          # rows of a reference draw of a declared distribution


# ----------------------------------------------------------------------------- targets

@dataclass(frozen=True)
class Target:
    """A declared value beside its realized one and the realized value's standard error
    over ``n`` rows; ``extra`` holds the row's further stats.json keys, in order (e.g.
    ``note``)."""

    name: str
    declared: float
    realized: float
    se: float
    n: int
    kind: str                          # share, rate, mean, ...
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasuredTarget:
    """A declared mean beside the mean of ``values`` (a feature measured from data), with
    the declared standard deviation that widens its tolerance."""

    name: str
    declared: float
    values: np.ndarray
    declared_sd: float
    kind: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TailTarget:
    """The share the top 20% of ``values`` hold, beside that of ``reference`` (a large draw
    of the declared distribution); a miss beyond ``band``, since a heavy tail's share
    converges too slowly for standard errors."""

    name: str
    reference: np.ndarray
    values: np.ndarray
    band: float = 0.02


AnyTarget = Target | MeasuredTarget | TailTarget


# ----------------------------------------------------------------------------- measures

@dataclass(frozen=True)
class Auc:
    """A realized value: the rank AUC of ``score`` for the boolean ``label``, rounded."""

    label: np.ndarray
    score: np.ndarray
    digits: int = 4


@dataclass(frozen=True)
class Rate:
    """A realized value: the share of true ``values`` (booleans), rounded, with its binomial
    standard error."""

    values: np.ndarray
    digits: int = 6


@dataclass(frozen=True)
class AucBounds:
    """The declared bounds of the single-feature AUCs (stats.json targets of kind ``bound``):
    no feature above ``ceiling``; every feature but the declared ``noise`` at least ``band``
    from chance (0.5), each of those within it. ``path``: the declaration's config path."""

    path: str
    ceiling: float | None
    noise: tuple[str, ...]
    band: float | None


@dataclass(frozen=True)
class FeatureAucs:
    """A realized value: each of ``features``' AUC alone in ``frame`` for ``label`` (a dict),
    and the best of them under the key ``best``; with ``bounds``, a target row of each."""

    frame: pd.DataFrame
    label: str
    features: tuple[str, ...]
    best: str
    bounds: AucBounds | None = None


@dataclass(frozen=True)
class Drift:
    """A realized value: per snapshot of the panel ``frame`` (its date column ``snapshot``)
    its rows, churn rate (``label``) and the AUC of a model trained before the shocks (a
    logistic regression on ``features``, fitted on the rows of the snapshots ``phases`` marks
    ``before``, as a user would have trained it), and that model's AUC over the snapshots
    before the shocks and over those after them. ``phases``: snapshot date (YYYY-MM-DD) ->
    before | across | after (simulator.spec.shocks.phases); ``start``: the first shock's."""

    frame: pd.DataFrame
    label: str
    features: tuple[str, ...]
    snapshot: str
    phases: Mapping[str, str]
    start: str
    declared: tuple[Mapping[str, Any], ...] = ()   # the shocks as declared


@dataclass(frozen=True)
class ArmContrasts:
    """A realized value: per intervention type, its true average effect over the logged
    decisions (the mean of ``truth``'s ``effect_<type>``, and of its ratio to the base: the
    mean relative effect) beside the naive difference of the arms' churn rates and the
    inverse-propensity-weighted one (simulator.ope.arm_contrast), from ``frame``'s columns
    ``type``, ``outcome`` (``churned``: churn) and ``propensity``, clustered by ``key``;
    ``truth`` has one row per row of ``frame``: ``base`` and each type's ``effects`` column."""

    frame: pd.DataFrame
    truth: pd.DataFrame
    types: tuple[str, ...]
    control: str
    effects: tuple[str, ...]           # truth's column of each type's effect, in ``types`` order
    base: str
    type: str
    outcome: str
    churned: str
    propensity: str
    key: str


@dataclass(frozen=True)
class Headline:
    """A ``realized`` value the report's first sentence shows, under a name that says what it
    measures and whether it was realized or declared (two AUCs must never read alike);
    ``form``: ``rate`` (a percentage), ``auc`` (three decimals), ``band`` (a {min, max}
    of AUCs) or ``count``."""

    key: str
    label: str
    form: str = "auc"


@dataclass(frozen=True)
class StageReview:
    """What one stage hands stats.json: its declared targets, its realized values (numbers,
    strings, dicts of them, or a :class:`Rate` / :class:`Auc` / :class:`FeatureAucs` /
    :class:`Drift`), and
    those of them the report's headline names, in order."""

    targets: list[AnyTarget] = field(default_factory=list)
    realized: dict[str, Any] = field(default_factory=dict)
    headline: tuple[Headline, ...] = ()


# ----------------------------------------------------------------------------- figures

@dataclass(frozen=True, kw_only=True)
class FigureSpec:
    """A report panel: its heading; each subclass is one kind of figure."""

    heading: str


@dataclass(frozen=True, kw_only=True)
class Lorenz(FigureSpec):
    """Lorenz curves of the heavy-tailed ``columns`` of ``table`` (no panel without any)."""

    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RatesBy(FigureSpec):
    """The rate of the boolean ``label`` of ``table`` by each label column in ``by``, among
    the rows active at the feature date (the headline's cohort: ``churn_date``, the churn
    date column, NaT or after it); ``churn_date`` None: every row."""

    table: str
    label: str | None
    by: tuple[str, ...]
    churn_date: str | None = None


@dataclass(frozen=True, kw_only=True)
class ClassHistograms(FigureSpec):
    """The numeric and boolean ``features`` of ``table`` by churn class: each one's
    standardized mean difference, and each one's distribution in either class."""

    table: str
    label: str | None
    features: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ClassHistories(FigureSpec):
    """Churners' and healthy partners' average written histories: (table, Panel) each."""

    histories: tuple[tuple[str, "Panel"], ...]


@dataclass(frozen=True, kw_only=True)
class ScenarioHistories(FigureSpec):
    """Each churn scenario's average history beside healthy partners', over the rows of
    ``table`` (every written history whose kind declares a panel)."""

    table: str
    label: str | None
    scenario: str | None


@dataclass(frozen=True, kw_only=True)
class AucBars(FigureSpec):
    """Each feature's AUC alone beside the single-feature AUC ceiling (declared) and the
    oracle's AUC: the stats.json ``realized`` keys holding them."""

    aucs: str
    top: str
    oracle: str


@dataclass(frozen=True, kw_only=True)
class LearnabilityTable(FigureSpec):
    """The oracle's AUC beside the declared band and the best single-feature AUC beside the
    declared ceiling: the stats.json ``realized`` keys holding them."""

    oracle: str
    band: str
    best: str
    top: str


@dataclass(frozen=True, kw_only=True)
class Bars(FigureSpec):
    """Bars of ``values`` over ``labels`` (e.g. shares of a label column)."""

    labels: tuple[str, ...]
    values: np.ndarray
    title: str
    color: str


@dataclass(frozen=True, kw_only=True)
class Histogram(FigureSpec):
    """A histogram of whole-number ``values`` over ``bins`` (edges)."""

    values: np.ndarray
    bins: np.ndarray
    title: str
    xlabel: str
    ylabel: str
    color: str


@dataclass(frozen=True, kw_only=True)
class TargetBars(FigureSpec):
    """A stage's stats.json targets whose names end in ``suffix``: declared beside
    realized, one pair of bars each, labelled by the target's ``label_key``."""

    stage: str
    suffix: str
    label_key: str
    declared: str                      # legend of the declared bars
    realized: str                      # legend of the realized bars
    title: str
    value_label: str                   # the label of the values' axis


@dataclass(frozen=True, kw_only=True)
class DriftLines(FigureSpec):
    """Churn and a model's AUC per snapshot around the shocks, from the stats.json
    ``realized`` value ``key`` (a :class:`Drift`)."""

    key: str


@dataclass(frozen=True, kw_only=True)
class SummaryTable(FigureSpec):
    """A small table of numbers and strings."""

    head: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, kw_only=True)
class FaultTable(FigureSpec):
    """The stats.json ``realized`` value ``key`` (the warehouse faults, by kind) as a table:
    each fault, the rows it could touch and those it did."""

    key: str


@dataclass(frozen=True, kw_only=True)
class ContrastTable(FigureSpec):
    """The stats.json ``realized`` value ``key`` (an :class:`ArmContrasts`) as a table: each
    type's true effect, the naive and the weighted estimate, their distances in SE."""

    key: str


@dataclass(frozen=True)
class Life:
    """One partner on a timeline: joined, its end (churn or as_of), its churn date (None if
    it stayed), and its dated events as (date, type, filled)."""

    key: str
    joined: Any
    end: Any
    gone: Any
    events: tuple[tuple[Any, str, bool], ...]


@dataclass(frozen=True, kw_only=True)
class Lifelines(FigureSpec):
    """A few partners' lives on the calendar: the label window from ``feature_date`` to
    ``as_of`` shaded, each life from ``start`` on, events coloured by type."""

    lives: tuple[Life, ...]
    feature_date: Any
    as_of: Any
    start: Any
    types: tuple[str, ...]
    title: str


@dataclass(frozen=True, kw_only=True)
class Survival(FigureSpec):
    """Kaplan–Meier survival of the partners of ``table`` active at ``start`` (the feature
    date; churn date ``date`` NaT or after it): days from ``start`` to the churn, or to
    ``end`` (as_of) for those who stay. One curve for the whole cohort, one per value of
    the column ``by`` (None: the whole cohort only), beside the declared curve
    ``(1 - declared_hazard) ** (t / period_days)``, the hazard per period of
    ``period_days`` days that the declared target rate implies."""

    table: str
    start: Any
    end: Any
    date: str
    by: str | None
    period_days: int
    declared_hazard: float
    title: str
    joined: str | None = None          # the joining date column: the cohort joined by ``start``
    since: str = "the feature date"    # what ``start`` is, for the axis
