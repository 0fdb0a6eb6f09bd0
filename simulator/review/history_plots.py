"""The report's pictures of the written histories: each group's average history, one
panel per history whose kind declares a ``Panel`` (churners beside healthy partners, or
each churn scenario beside them), each partner's days counted back from its own
observation end.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..histories import observation_end
from ..stage import WorldSpec
from .canvas import Image, image
from .svg import Panel, render


def class_histories(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], panels: list) -> Image | None:
    """Churners' and healthy partners' histories on average, one panel per (table, Panel),
    each partner's days counted back from its own observation end (the feature date, or
    the day before it left): a trailing-window total day by day, or totals per 30-day
    month. Days before a partner joined count as days without activity."""
    role = spec.role("label")
    if role is None or not panels:
        return None
    label = tables[spec.table][role].to_numpy()
    if label.all() or not label.any():
        return None
    groups = [("healthy", "#1f77b4"), ("churned", "#d62728")]
    return _average_histories(spec, tables, panels, label.astype(np.int64), groups)


def scenario_histories(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], panels: list, rows: pd.DataFrame,
                       label: str | None, scenario: str | None) -> Image | None:
    """Each churn scenario's average history beside healthy partners' (the scenarios'
    signatures as a picture), over the partners of ``rows`` (the model-ready table: the
    cohort, all observed to the feature date), one panel per (table, Panel) of ``panels``."""
    if not panels or label is None or scenario is None or rows.empty:
        return None
    churned = rows[label].to_numpy(dtype=bool)
    if churned.all() or not churned.any():
        return None
    scenarios = rows[scenario].astype("category")          # categories in declared order
    present, code = np.unique(scenarios.cat.codes.to_numpy()[churned], return_inverse=True)
    counts = np.bincount(code, minlength=present.size)
    # a group per partners row: 0 healthy, 1 + its scenario for a churner, the last for rows not drawn
    group = np.full(len(tables[spec.table]), 1 + present.size, dtype=np.int64)
    where = pd.Index(tables[spec.table][spec.key]).get_indexer(rows[spec.key])
    group[where[~churned]] = 0
    group[where[churned]] = 1 + code
    colors = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#2ca02c"]
    groups = [(f"healthy (n={(~churned).sum():,})", "#000")]
    groups += [(f"{scenarios.cat.categories[c]} (n={k:,})", colors[i % len(colors)])
               for i, (c, k) in enumerate(zip(present, counts))]
    return _average_histories(spec, tables, panels, group, groups, "the feature date")


def _average_histories(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], panels: list,
                       group: np.ndarray, groups: list[tuple[str, str]],
                       end_name: str = "the feature date (or the day before leaving)") -> Image:
    """One panel per (table, Panel): each group's average history. ``group`` holds a group
    code per partners row (0 .. len(groups) - 1; len(groups): left out); an average is over
    every partner of its group, a day it has no row counting as no activity."""
    g = len(groups)
    end = observation_end(spec, tables[spec.table])
    sizes = np.bincount(group, minlength=g + 1)[:g]
    beside = len(groups) > 2                               # a long legend beside the last panel
    panels_out = []
    for i, (t, panel) in enumerate(panels):
        value, date, window = panel.value, panel.date, panel.window
        # the key is a categorical over all partners, in partners order: its code is the row
        codes = t[spec.key].cat.codes.to_numpy()
        day = ((end[codes] - t[date].to_numpy()) // np.timedelta64(1, "D")).astype(np.int64)
        seen = day >= 0                                    # (a horizon's rows run on after the feature date)
        k = int(day.max(initial=0)) + 1
        totals = np.bincount(group[codes[seen]] * k + day[seen], weights=t[value].to_numpy(dtype=float)[seen],
                             minlength=(g + 1) * k)
        per_day = totals.reshape(g + 1, k)[:g, ::-1] / np.maximum(sizes, 1)[:, None]
        if window:                                         # the trailing window-day count, as the trend reads it
            series = np.cumsum(per_day, axis=1)
            series = (series - np.concatenate([np.zeros((g, window)), series[:, :-window]], axis=1))[:, -window:]
            x = np.arange(-window + 1, 1)
        else:                                              # 30-day months
            series = per_day[:, per_day.shape[1] % 30:].reshape(g, -1, 30).sum(axis=2)
            x = np.arange(-series.shape[1] + 1, 1)
        unit = "days" if window else "months"
        last = i == len(panels) - 1
        p = Panel(400 + 230 * (beside and last), 300, title=panel.title, title_size=10,
                  xlabel=f"{unit} before {end_name}", ylabel=panel.ylabel, integer_x=True,
                  legend=("right" if last else None) if beside else "best")
        for row, (lab, color) in enumerate(groups):
            p.line(x, series[row], color, label=lab, width=2 if color == "#000" else 1.5,
                   marker=None if window else "o")
        panels_out.append(p)
    return image(render([panels_out]))
