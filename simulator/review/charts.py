"""The report's charts: one function per kind of figure a stage specifies (``review.data``).

Each draws from plain data (a table and column names, arrays, or stats.json's values)
and returns a payload (``review.canvas``), or None when there is nothing to draw. The
histories' averages are in ``review.history_plots``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..dates import DAY
from .canvas import MAX_POINTS, Html, Image, figure, html_table, image, sample
from .data import AucBars, Bars, Histogram, LearnabilityTable, Lifelines, Survival, TargetBars

MIN_GROUP = 20                               # rows below which a group gets no curve of its own


def lorenz(partners: pd.DataFrame, cols: Sequence[str]) -> Image | None:
    """Lorenz curves of heavy-tailed columns (None without any)."""
    if not cols:
        return None
    fig = figure(figsize=(5, 4))
    ax = fig.subplots()
    for name in cols:
        x = np.sort(partners[name].to_numpy(dtype=float))
        cum = np.concatenate([[0], np.cumsum(x)]) / x.sum()
        idx = np.linspace(0, x.size, min(MAX_POINTS, x.size + 1)).astype(int)
        share = 1 - cum[x.size - np.minimum(x.size // 5, x.size)]
        ax.plot(idx / x.size, cum[idx], label=f"{name} (top 20% hold {share:.0%})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="equality")
    ax.set(xlabel="share of partners (poorest first)", ylabel="share of the total", title="Lorenz curve")
    ax.legend(fontsize=7)
    return image(fig)


def rates_by(partners: pd.DataFrame, label: str | None, by: Sequence[str]) -> Image | None:
    """The rate of boolean ``label`` by every label column in ``by`` (the overall rate dashed)."""
    if label is None or not by:
        return None
    fig = figure(figsize=(3.2 * len(by), 4))
    axes = np.atleast_1d(fig.subplots(1, len(by)))
    fig.subplots_adjust(bottom=0.4, wspace=0.3)              # upright labels: long names never overlap
    overall = partners[label].mean()
    for ax, name in zip(axes, by):
        rate = partners.groupby(name, observed=True)[label].mean()
        ax.bar(rate.index.astype(str), rate.to_numpy(), color="#1f77b4")
        ax.axhline(overall, color="k", ls="--", lw=0.8)
        ax.set(ylim=(0, max(0.5, rate.max() * 1.1)))
        ax.set_title(f"{label} rate by {name}", fontsize=9)     # four titles side by side
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    return image(fig)


def features_by_class(partners: pd.DataFrame, label: str | None, numeric: Sequence[str],
                      columns: int = 6) -> Image | None:
    """Every ``numeric`` (or boolean) feature the table holds by churn class: its
    standardized mean difference (one bar each), and its distribution in each class (one
    small panel each, ``columns`` a row, the features that separate the classes most first)."""
    if label is None:
        return None
    partners = sample(partners)
    churned = partners[label].to_numpy()
    names = [n for n in numeric if n in partners.columns]
    if not names or churned.all() or not churned.any():
        return None
    values = {n: partners[n].to_numpy(dtype=float) for n in names}
    smd = {n: (np.nanmean(x[churned]) - np.nanmean(x[~churned])) / (np.nanstd(x) or 1) for n, x in values.items()}
    rows = -(-len(names) // columns)
    bar_height = 0.16 * len(names) + 0.6
    fig = figure(figsize=(2.2 * columns, bar_height + 1.75 * rows))
    grid = fig.add_gridspec(2, 1, height_ratios=[bar_height, 1.75 * rows], hspace=0.12,
                            left=0.02, right=0.99, top=0.97, bottom=0.01)
    bar = fig.add_subplot(grid[0].subgridspec(1, 5)[0, 1:4])
    order = sorted(names, key=lambda n: smd[n])
    bar.barh(order, [smd[n] for n in order], color=["#d62728" if smd[n] < 0 else "#1f77b4" for n in order])
    bar.set_title("standardized mean difference, churned - healthy", fontsize=9)
    bar.tick_params(labelsize=6)
    _class_panels(fig.add_subplot(grid[1]), [(n, values[n]) for n in sorted(names, key=lambda n: -abs(smd[n]))],
                  churned, columns)
    return image(fig)


def _class_panels(ax, features: list[tuple[str, np.ndarray]], churned: np.ndarray, columns: int) -> None:
    """Small multiples in one Axes (a grid of Axes costs ~30 ms each to draw): each
    feature's distribution in either class in a cell of its own, scaled to the cell, with
    its name above and three values of its own axis below (the shapes compare; density
    units would not)."""
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    width, height = 0.86, 0.62                    # a cell's frame in a 1 x 1 slot: room for the labels
    for i, (name, x) in enumerate(features):
        left, bottom = i % columns, -(i // columns) - 1 + 0.24
        lo, hi = np.nanpercentile(x, [0.5, 99.5])
        whole = hi - lo <= 40 and np.array_equal(x[np.isfinite(x)], np.round(x[np.isfinite(x)]))
        # a bar per value of a count or a flag; else 40 bins over the middle 99%
        bins = np.arange(lo - 0.5, hi + 1) if whole else np.linspace(lo, hi if hi > lo else lo + 1, 40)
        density = [np.histogram(np.clip(x[mask], lo, hi), bins=bins, density=True)[0] for mask in (~churned, churned)]
        top = max(float(np.nanmax(d)) for d in density) or 1.0
        at = lambda v: left + (v - bins[0]) / (bins[-1] - bins[0]) * width
        for d, lab, color in zip(density, ("healthy", "churned"), ("#1f77b4", "#d62728")):
            ax.stairs(bottom + np.nan_to_num(d) / top * height * 0.95, at(bins), baseline=bottom, fill=True,
                      alpha=0.5, color=color, label=lab if i == 0 else None)
        ax.add_patch(Rectangle((left, bottom), width, height, fill=False, lw=0.6, ec="k"))
        ax.text(left + width / 2, bottom + height + 0.04, name, ha="center", va="bottom", fontsize=7)
        for v in MaxNLocator(3, integer=whole).tick_values(bins[0], bins[-1]):
            if bins[0] <= v <= bins[-1]:
                ax.plot([at(v)] * 2, [bottom, bottom - 0.03], color="k", lw=0.6)
                ax.text(at(v), bottom - 0.05, f"{v:g}", ha="center", va="top", fontsize=6)
    rows = -(-len(features) // columns)
    ax.set(xlim=(-0.05, columns), ylim=(-rows, 0))
    ax.axis("off")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1), ncol=2, frameon=False)


def auc_bars(spec: AucBars, stats: Mapping) -> Image | None:
    """Each feature's AUC alone, the single-feature AUC ceiling (declared) and the oracle's AUC
    as lines, from stats.json's ``realized`` under the keys ``spec`` names (None without
    feature AUCs)."""
    realized = stats.get("realized", {})
    aucs = {k: v for k, v in (realized.get(spec.aucs) or {}).items() if v is not None}
    if not aucs:
        return None
    top, oracle = realized.get(spec.top), realized.get(spec.oracle)
    order = sorted(aucs, key=aucs.get)
    fig = figure(figsize=(7, 0.2 * len(order) + 1))
    fig.subplots_adjust(left=0.33, right=0.97, bottom=0.6 / (0.2 * len(order) + 1), top=0.98)
    ax = fig.subplots()
    over = [top is not None and aucs[n] > top for n in order]
    ax.barh(order, [aucs[n] - 0.5 for n in order], left=0.5, color=["#d62728" if o else "#1f77b4" for o in over])
    if top is not None:
        ax.axvline(top, color="k", ls="--", lw=1, label=f"single-feature AUC ceiling (declared) {top:.2f}")
    if oracle is not None:
        ax.axvline(oracle, color="#2ca02c", lw=1, label=f"oracle AUC (realized) {oracle:.3f}")
    ax.set(xlim=(0.5, 1), xlabel="AUC of the feature alone (0.5: chance; either direction)")
    ax.tick_params(axis="y", labelsize=7)
    if top is not None or oracle is not None:
        ax.legend(fontsize=7, loc="lower right")
    return image(fig)


def learnability_table(spec: LearnabilityTable, stats: Mapping) -> Html | None:
    """The oracle's AUC beside the declared band of a trained model's (the report trains
    none: the test suite does) and the best single feature beside the declared ceiling,
    from stats.json's ``realized`` under the keys ``spec`` names."""
    realized = stats.get("realized", {})
    oracle, band = realized.get(spec.oracle), realized.get(spec.band)
    best, top = realized.get(spec.best), realized.get(spec.top)
    if oracle is None and band is None and best is None:
        return None
    reach = "" if band is None or oracle is None else (
        "at or above the band's minimum: the band is within reach" if oracle >= band["min"]
        else "below the band's minimum: no model can reach the band")
    rows = [["oracle AUC (realized): the churn probability given the latent state, an upper bound for any model",
             "" if oracle is None else oracle, reach]]
    if band is not None:
        rows.append(["trained-model AUC band (declared; HistGradientBoostingClassifier, the test suite)",
                     f"{band['min']:.2f} to {band['max']:.2f}", ""])
    if best is not None:
        rows.append(["best single-feature AUC (realized)", best, "" if top is None else (
            "at or below the ceiling" if best <= top else "above the ceiling")])
    if top is not None:
        rows.append(["single-feature AUC ceiling (declared)", top, ""])
    return html_table(["", "AUC", "check"], rows)


def bars(spec: Bars) -> Image:
    """Bars of values over labels (e.g. a label column's shares), the labels slanted."""
    fig = figure(figsize=(4, 3.4))
    fig.subplots_adjust(bottom=0.35)
    ax = fig.subplots()
    ax.bar(list(spec.labels), spec.values, color=spec.color)
    ax.set(title=spec.title)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    return image(fig)


def histogram(spec: Histogram) -> Image:
    """A histogram of whole numbers, one bar per value."""
    fig = figure(figsize=(5, 3.5))
    fig.subplots_adjust(bottom=0.15)
    ax = fig.subplots()
    ax.hist(spec.values, bins=spec.bins, color=spec.color)
    ax.set(title=spec.title, xlabel=spec.xlabel, ylabel=spec.ylabel)
    return image(fig)


def target_bars(spec: TargetBars, stats: Mapping) -> Image | None:
    """A stage's targets (stats.json rows) named ``*suffix``: declared beside realized, one
    pair of horizontal bars each, labelled by its ``label_key`` (None without any)."""
    rows = [t for t in stats["targets"] if t.get("stage") == spec.stage and t["target"].endswith(spec.suffix)]
    if not rows:
        return None
    labels = [str(t.get(spec.label_key, t["target"])) for t in rows]
    width, height = 9, 0.42 * len(rows) + 1.5
    fig = figure(figsize=(width, height))
    left = min(0.55, (0.055 * max(map(len, labels)) + 0.2) / width)     # the labels' width, about 6 pt a char
    fig.subplots_adjust(left=left, right=0.97, bottom=0.5 / height, top=1 - 0.75 / height)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]                                      # the first row on top
    se = [2 * (t.get("se") or 0) for t in rows]
    ax.barh(y + 0.2, [t["declared"] for t in rows], 0.4, label=spec.declared, color="#7f7f7f")
    ax.barh(y - 0.2, [t["realized"] or 0 for t in rows], 0.4, xerr=se, label=f"{spec.realized} (bar: 2 SE)",
            color="#2ca02c", error_kw={"lw": 0.8, "capsize": 2})
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(spec.value_label)
    fig.suptitle(spec.title, fontsize=9, y=1 - 0.1 / height, va="top")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1), ncol=2, frameon=False)
    return image(fig)


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> Html:
    """A stage's table as HTML."""
    return html_table(list(head), [list(r) for r in rows])


def lifelines(spec: Lifelines) -> Image | None:
    """A handful of lives on the calendar: joining (a tick, when after ``start``), the
    label window shaded from the feature date, each event (filled: ``filled``), the churn."""
    if not spec.lives:
        return None
    fig = figure(figsize=(9, 0.45 * len(spec.lives) + 1.2))
    ax = fig.subplots()
    ax.axvspan(spec.feature_date, spec.as_of, color="#fee", label="label window")
    ax.axvline(spec.feature_date, color="k", lw=0.8, ls="--", label="feature date")
    colors = dict(zip(spec.types, ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]))
    for y, life in enumerate(spec.lives):
        ax.plot([max(life.joined, spec.start), life.end], [y, y], color="#999", lw=2)
        if life.joined >= spec.start:
            ax.plot(life.joined, y, "k|", ms=10)
        if life.gone is not None:
            ax.plot(life.gone, y, "rx", ms=8)
        for date, kind, filled in life.events:
            ax.plot(date, y, "o", color=colors.get(kind, "k"), mfc=colors.get(kind, "k") if filled else "white")
    ax.set_yticks(range(len(spec.lives)), [life.key for life in spec.lives], fontsize=7)
    for kind, c in colors.items():
        ax.plot([], [], "o", color=c, mfc="white", label=kind)
    ax.plot([], [], "rx", label="churned_at")
    ax.plot([], [], "k|", label="joined (created_at)")
    ax.set(title=spec.title, xlim=(spec.start, spec.as_of + 5 * DAY))
    ax.legend(fontsize=6, ncol=4, loc="upper left", bbox_to_anchor=(0, -0.12))
    fig.subplots_adjust(bottom=0.3)
    return image(fig)


def survival_times(spec: Survival, partners: pd.DataFrame) -> pd.DataFrame:
    """The cohort of ``spec`` (joined by ``start``, churn date NaT or after it), one row each: ``days``
    from ``start`` to its churn (``churned``) or to ``end`` (censored), and its ``group``
    (the value of ``spec.by``, as text) when the table has that column."""
    start, end = pd.Timestamp(spec.start), pd.Timestamp(spec.end)
    gone = pd.to_datetime(partners[spec.date])
    cohort = (gone.isna() | (gone > start)).to_numpy()
    if spec.joined is not None and spec.joined in partners:        # (not those who join later)
        cohort &= (pd.to_datetime(partners[spec.joined]) <= start).to_numpy()
    gone = gone[cohort]
    churned = (gone.notna() & (gone <= end)).to_numpy()
    out = pd.DataFrame({"days": ((gone.where(churned, end) - start) / pd.Timedelta(days=1)).to_numpy(),
                        "churned": churned})
    if spec.by is not None and spec.by in partners:
        out["group"] = partners.loc[cohort, spec.by].astype(str).to_numpy()
    return out


def kaplan_meier(days: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan–Meier estimate (time 0 first, then each distinct time): S(t) = prod over
    times u <= t of (1 - churned at u / at risk at u). lifelines' KaplanMeierFitter gives the
    same to 1e-12 (tests/test_review.py checks it); lifelines' import alone takes
    about 1.4 s, a sixth of the default run, so the report computes the product itself."""
    order = np.argsort(days, kind="stable")
    d, e = np.asarray(days, dtype=float)[order], np.asarray(churned, dtype=bool)[order]
    times, first, counts = np.unique(d, return_index=True, return_counts=True)
    events = np.add.reduceat(e.astype(float), first) if d.size else np.zeros(0)
    surviving = np.cumprod(1 - events / (d.size - first))
    if times.size and times[0] == 0:          # churned on day 0: the curve starts below 1
        return times, surviving
    return np.r_[0.0, times], np.r_[1.0, surviving]


def survival(spec: Survival, partners: pd.DataFrame) -> Image | None:
    """Kaplan–Meier curves of the cohort and of each group of ``spec.by`` with at least
    MIN_GROUP rows, beside the declared curve, dashed (None without a cohort)."""
    times = survival_times(spec, partners)
    if times.empty:
        return None
    horizon = (pd.Timestamp(spec.end) - pd.Timestamp(spec.start)) / pd.Timedelta(days=1)
    groups = [("all partners", times)]
    if "group" in times:
        groups += [(str(name), g) for name, g in times.groupby("group", sort=True) if len(g) >= MIN_GROUP]
    fig = figure(figsize=(7, 4.2))
    fig.subplots_adjust(right=0.66)              # the legend beside the curves
    ax = fig.subplots()
    for i, (name, g) in enumerate(groups):
        at, surviving = kaplan_meier(g["days"].to_numpy(), g["churned"].to_numpy())
        ax.step(at, surviving, where="post", lw=2 if i == 0 else 1, label=f"{name} (n={len(g):,})")
    t = np.linspace(0, horizon, 200)
    ax.plot(t, (1 - spec.declared_hazard) ** (t / spec.period_days), "k--", lw=1, label="declared (target_rate)")
    ax.set(xlim=(0, horizon), ylim=(0, 1.02), xlabel=f"days since {spec.since}", ylabel="survival",
           title=spec.title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    return image(fig)
