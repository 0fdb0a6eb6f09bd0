"""Every figure a stage specifies, drawn: one drawing per figure kind of ``review.data``.

:data:`DRAWINGS` maps each kind (a dataclass) to the function that draws it from the
specification, the world, its tables and stats.json's contents; a new kind of figure is
a record in ``review.data`` and an entry here. A drawing returns a payload
(``review.canvas``: an Image or an Html table), or None when there is nothing to show
(the panel is left out).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ..stage import WorldSpec
from . import charts, history_plots
from .canvas import Payload, sample
from .data import (AucBars, Bars, ClassHistograms, ClassHistories, ContrastTable, DriftLines, FaultTable, FigureSpec,
                   Histogram, LearnabilityTable, Lifelines, Lorenz, RatesBy, ScenarioHistories, SummaryTable, Survival,
                   TargetBars)


@dataclass(frozen=True)
class Scene:
    """What a drawing may read besides its specification: the world, its tables, the
    statistics, and the written histories some stage draws by churn class ((frame, Panel)
    each), which the scenarios' averages reuse."""

    world: WorldSpec
    tables: Mapping[str, pd.DataFrame]
    stats: Mapping
    histories: list


def _cohort(scene: Scene, frame: pd.DataFrame, churn_date: str | None) -> pd.DataFrame:
    """The rows of ``frame`` active at the feature date (``world.timeline.active``, from the
    churn date column ``churn_date``); every row without one, or without a timeline."""
    if churn_date is None or scene.world.timeline is None or churn_date not in frame:
        return frame
    return frame[scene.world.timeline.active(frame[churn_date])]


Drawing = Callable[[FigureSpec, Scene], "Payload | None"]

DRAWINGS: dict[type, Drawing] = {
    Lorenz: lambda f, s: charts.lorenz(sample(s.tables[f.table]), f.columns),
    RatesBy: lambda f, s: charts.rates_by(sample(_cohort(s, s.tables[f.table], f.churn_date)), f.label, f.by),
    ClassHistograms: lambda f, s: charts.features_by_class(s.tables[f.table], f.label, f.features),
    ClassHistories: lambda f, s: history_plots.class_histories(
        s.world, s.tables, [(s.tables[t], panel) for t, panel in f.histories]),
    ScenarioHistories: lambda f, s: history_plots.scenario_histories(
        s.world, s.tables, s.histories, s.tables[f.table], f.label, f.scenario),
    AucBars: lambda f, s: charts.auc_bars(f, s.stats),
    LearnabilityTable: lambda f, s: charts.learnability_table(f, s.stats),
    Bars: lambda f, s: charts.bars(f),
    Histogram: lambda f, s: charts.histogram(f),
    TargetBars: lambda f, s: charts.target_bars(f, s.stats),
    SummaryTable: lambda f, s: charts.table(f.head, f.rows),
    DriftLines: lambda f, s: charts.drift_lines(f, s.stats),
    ContrastTable: lambda f, s: charts.contrast_table(f, s.stats),
    FaultTable: lambda f, s: charts.fault_table(f, s.stats),
    Lifelines: lambda f, s: charts.lifelines(f),
    Survival: lambda f, s: charts.survival(f, s.tables[f.table]),
}


def draw(figures: Sequence[FigureSpec], world: WorldSpec, tables: Mapping[str, pd.DataFrame],
         stats: Mapping) -> list[tuple[str, Payload]]:
    """(heading, payload) of every figure with something to show, in the order given."""
    histories = [(tables[t], panel) for f in figures if isinstance(f, ClassHistories) for t, panel in f.histories]
    scene = Scene(world, tables, stats, histories)
    out = []
    for f in figures:
        drawing = DRAWINGS.get(type(f))
        if drawing is None:
            raise TypeError(f"no drawing for the figure kind {type(f).__name__} (review.figures.DRAWINGS)")
        payload = drawing(f, scene)
        if payload is not None:
            out.append((f.heading, payload))
    return out
