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
from .canvas import MAX_POINTS, Html, Image, html_table, image, sample
from .data import AucBars, Bars, ContrastTable, DriftLines, FaultTable, Histogram, LearnabilityTable, Lifelines, Survival, TargetBars
from .svg import PALETTE, Entry, Panel, as_numbers, render

BLUE, ORANGE, GREEN, RED = PALETTE[:4]
GREY = "#7f7f7f"
MIN_GROUP = 20                               # rows below which a group gets no curve of its own


def lorenz(partners: pd.DataFrame, cols: Sequence[str]) -> Image | None:
    """Lorenz curves of heavy-tailed columns (None without any)."""
    if not cols:
        return None
    p = Panel(430, 340, title="Lorenz curve", xlabel="share of partners (poorest first)",
              ylabel="share of the total", xlim=(0, 1), ylim=(0, 1))
    for i, name in enumerate(cols):
        x = np.sort(partners[name].to_numpy(dtype=float))
        cum = np.concatenate([[0], np.cumsum(x)]) / x.sum()
        idx = np.linspace(0, x.size, min(MAX_POINTS, x.size + 1)).astype(int)
        share = 1 - cum[x.size - np.minimum(x.size // 5, x.size)]
        p.line(idx / x.size, cum[idx], PALETTE[i % len(PALETTE)], label=f"{name} (top 20% hold {share:.0%})")
    p.line([0, 1], [0, 1], "#000", width=0.8, dash="4,3", label="equality")
    return image(render([[p]]))


def rates_by(partners: pd.DataFrame, label: str | None, by: Sequence[str]) -> Image | None:
    """The rate of boolean ``label`` by every label column in ``by`` (the overall rate dashed)."""
    if label is None or not by:
        return None
    overall = partners[label].mean()
    panels = []
    for name in by:
        rate = partners.groupby(name, observed=True)[label].mean()
        p = Panel(250, 330, title=f"{label} rate by {name}", title_size=10, xcats=rate.index.astype(str).tolist(),
                  xrotate=90, ylim=(0, max(0.5, float(rate.max()) * 1.1)), legend=None)
        p.bars(np.arange(len(rate)), rate.to_numpy(), BLUE)
        p.rule(overall, vertical=False)
        panels.append(p)
    return image(render([panels]))


def features_by_class(partners: pd.DataFrame, label: str | None, numeric: Sequence[str],
                      columns: int = 6) -> Image | None:
    """Every ``numeric`` (or boolean) feature the table holds by churn class: its
    standardized mean difference (one bar each), and its distribution in each class (one
    small panel each, ``columns`` a row, the features that separate the classes most first:
    the shapes compare, on each feature's own axis)."""
    if label is None:
        return None
    partners = sample(partners)
    churned = partners[label].to_numpy()
    names = [n for n in numeric if n in partners.columns]
    if not names or churned.all() or not churned.any():
        return None
    values = {n: partners[n].to_numpy(dtype=float) for n in names}
    smd = {n: (np.nanmean(x[churned]) - np.nanmean(x[~churned])) / (np.nanstd(x) or 1) for n, x in values.items()}
    cell = 170
    order = sorted(names, key=lambda n: -smd[n])                          # the largest on top
    bar = Panel(cell * columns, 17 * len(names) + 70, title="standardized mean difference, churned - healthy",
                ycats=order, legend="lower right")
    bar.bars(np.arange(len(order)), [smd[n] for n in order], [RED if smd[n] < 0 else BLUE for n in order],
             horizontal=True)
    bar.rule(0.0, dash=None, width=0.8)
    rows, row = [[bar]], []
    for i, name in enumerate(sorted(names, key=lambda n: -abs(smd[n]))):
        x = values[name]
        lo, hi = np.nanpercentile(x, [0.5, 99.5])
        whole = hi - lo <= 40 and np.array_equal(x[np.isfinite(x)], np.round(x[np.isfinite(x)]))
        # a bar per value of a count or a flag; else 40 bins over the middle 99%
        bins = np.arange(lo - 0.5, hi + 1) if whole else np.linspace(lo, hi if hi > lo else lo + 1, 40)
        density = [np.histogram(np.clip(x[mask], lo, hi), bins=bins, density=True)[0] for mask in (~churned, churned)]
        top = max(float(np.nanmax(d)) for d in density) or 1.0
        p = Panel(cell, 125, title=name, title_size=9, yaxis=False, xticks=3, integer_x=bool(whole), frame=True,
                  xlim=(bins[0], bins[-1]), ylim=(0, 1.05), legend="upper right" if i == 0 else None)
        for d, lab, color in zip(density, ("healthy", "churned"), (BLUE, RED)):
            p.stairs(bins, np.nan_to_num(d) / top, color, label=lab)
        row.append(p)
        if len(row) == columns:
            rows.append(row)
            row = []
    return image(render(rows + ([row] if row else [])))


def auc_bars(spec: AucBars, stats: Mapping) -> Image | None:
    """Each feature's AUC alone, the single-feature AUC ceiling (declared) and the oracle's AUC
    as lines, from stats.json's ``realized`` under the keys ``spec`` names (None without
    feature AUCs)."""
    realized = stats.get("realized", {})
    aucs = {k: v for k, v in (realized.get(spec.aucs) or {}).items() if v is not None}
    if not aucs:
        return None
    top, oracle = realized.get(spec.top), realized.get(spec.oracle)
    order = sorted(aucs, key=lambda n: -aucs[n])                        # the largest on top
    p = Panel(560, 17 * len(order) + 80, ycats=order, xlim=(0.5, 1), legend="lower right",
              xlabel="AUC of the feature alone (0.5: chance; either direction)")
    over = [top is not None and aucs[n] > top for n in order]
    p.bars(np.arange(len(order)), [aucs[n] - 0.5 for n in order], [RED if o else BLUE for o in over], base=0.5,
           horizontal=True)
    if top is not None:
        p.rule(top, label=f"single-feature AUC ceiling (declared) {top:.2f}")
    if oracle is not None:
        p.rule(oracle, GREEN, dash=None, label=f"oracle AUC (realized) {oracle:.3f}")
    return image(render([[p]]))


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
    p = Panel(330, 290, title=spec.title, xcats=[str(v) for v in spec.labels], xrotate=45, legend=None)
    p.bars(np.arange(len(spec.labels)), spec.values, spec.color)
    return image(render([[p]]))


def histogram(spec: Histogram) -> Image:
    """A histogram of whole numbers, one bar per value."""
    counts, edges = np.histogram(spec.values, bins=spec.bins)
    p = Panel(400, 290, title=spec.title, xlabel=spec.xlabel, ylabel=spec.ylabel, integer_x=True, legend=None)
    p.bars((edges[:-1] + edges[1:]) / 2, counts, spec.color, thick=float(np.min(np.diff(edges))) * 0.9)
    return image(render([[p]]))


def target_bars(spec: TargetBars, stats: Mapping) -> Image | None:
    """A stage's targets (stats.json rows) named ``*suffix``: declared beside realized, one
    pair of horizontal bars each, labelled by its ``label_key`` (None without any)."""
    rows = [t for t in stats["targets"] if t.get("stage") == spec.stage and t["target"].endswith(spec.suffix)]
    if not rows:
        return None
    labels = [str(t.get(spec.label_key, t["target"])) for t in rows]
    p = Panel(720, 30 * len(rows) + 110, title=spec.title, xlabel=spec.value_label, ycats=labels, legend="below",
              legend_columns=2)
    at = np.arange(len(rows))
    p.bars(at - 0.2, [t["declared"] for t in rows], GREY, thick=0.4, horizontal=True, label=spec.declared)
    p.bars(at + 0.2, [t["realized"] or 0 for t in rows], GREEN, thick=0.4, horizontal=True,
           err=[2 * (t.get("se") or 0) for t in rows], label=f"{spec.realized} (bar: 2 SE)")
    return image(render([[p]]))


def drift_lines(spec: DriftLines, stats: Mapping) -> Image | None:
    """Each snapshot's churn rate, and the AUC of a model trained on the snapshots before the
    first shock, with the shock's start marked; from stats.json's ``realized`` value
    ``spec.key`` (None without it)."""
    value = stats.get("realized", {}).get(spec.key)
    if not value or not value.get("snapshots"):
        return None
    rows = value["snapshots"]
    days = np.array([r["snapshot"] for r in rows], dtype="datetime64[D]")
    colors = {"before": BLUE, "across": GREY, "after": RED}
    start = np.datetime64(value["first_shock"], "D")
    panels = []
    for key, title, ylabel in (("churn_rate", "churn in the label window after each snapshot", "churn rate"),
                               ("model_auc", "AUC of a model trained before the shock", "AUC")):
        p = Panel(420, 300, title=title, ylabel=ylabel, legend="below", legend_columns=3)
        y = np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)
        p.line(days, y, GREY, width=1)
        for phase, color in colors.items():
            at = np.array([r["phase"] == phase for r in rows])
            if at.any():
                p.points(days[at], y[at], color, label={"before": "label window before the shock",
                                                        "across": "across its start",
                                                        "after": "after its start"}[phase])
        p.rule(start, RED, label=f"first shock {value['first_shock']}")
        panels.append(p)
    return image(render([panels]))


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> Html:
    """A stage's table as HTML."""
    return html_table(list(head), [list(r) for r in rows])


def contrast_table(spec: ContrastTable, stats: Mapping) -> Html | None:
    """Each type's true effect beside the naive and the weighted estimate (stats.json)."""
    found = (stats.get("realized") or {}).get(spec.key)
    if not found:
        return None
    fmt = lambda x, d=4: "-" if x is None else f"{x:+.{d}f}"
    return table(("type", "decisions", "true effect (mean of decision_truth)", "mean relative effect",
                  "naive: arm difference", "naive: SE from the truth", "IPW (propensity)", "IPW: SE from the truth"),
                 [(kind, f"{r['decisions']:,}", fmt(r["truth"]), fmt(r["relative_effect"], 3), fmt(r["naive"]),
                   fmt(r["naive_z"], 1), fmt(r["ipw"]), fmt(r["ipw_z"], 1)) for kind, r in found.items()])


FAULT_COUNTS = {"missing": ("rows", "lost", "values lost (null)"), "late": ("rows", "late", "rows arriving late"),
                "duplicates": ("rows", "duplicated", "rows written twice"),
                "outages": ("partners", "rows_not_recorded", "rows not recorded"),
                "reactivations": ("churners", "returned", "churners returned")}


def fault_table(spec: FaultTable, stats: Mapping) -> Html | None:
    """Each warehouse fault (stats.json): what it touched, out of how many."""
    found = (stats.get("realized") or {}).get(spec.key)
    rows = [(kind, name, f"{r[FAULT_COUNTS[kind][0]]:,} {FAULT_COUNTS[kind][0]}", f"{r[FAULT_COUNTS[kind][1]]:,}",
             FAULT_COUNTS[kind][2], r.get("where") or "")
            for kind, entries in (found or {}).items() if kind in FAULT_COUNTS for name, r in entries.items()]
    if not rows:
        return None
    return table(("fault", "of", "out of", "count", "what", "where"), rows)


def lifelines(spec: Lifelines) -> Image | None:
    """A handful of lives on the calendar: joining (a tick, when after ``start``), the
    label window shaded from the feature date, each event (filled: ``filled``), the churn."""
    if not spec.lives:
        return None
    p = Panel(760, 30 * len(spec.lives) + 150, title=spec.title, ycats=[life.key for life in spec.lives],
              xlim=tuple(as_numbers([spec.start, spec.as_of + 5 * DAY])[0]), legend="below", legend_columns=4)
    p.span(spec.feature_date, spec.as_of, "#fee", label="label window")
    p.rule(spec.feature_date, label="feature date")
    colors = dict(zip(spec.types, PALETTE))
    for y, life in enumerate(spec.lives):
        p.line([max(life.joined, spec.start), life.end], [y, y], "#999", width=2)
        if life.joined >= spec.start:
            p.points([life.joined], [y], "#000", "|")
        if life.gone is not None:
            p.points([life.gone], [y], RED, "x")
        for date, kind, filled in life.events:
            p.points([date], [y], colors.get(kind, "#000"), "o", hollow=not filled)
    for kind, c in colors.items():
        p.entries.append(Entry(kind, c, "o", hollow=True, line=False))
    p.entries += [Entry("churned_at", RED, "x", line=False), Entry("joined (created_at)", "#000", "|", line=False)]
    return image(render([[p]]))


def survival_times(spec: Survival, partners: pd.DataFrame) -> pd.DataFrame:
    """The cohort of ``spec`` (joined by ``start``, churn date NaT or after it), one row each: ``days``
    from ``start`` to its churn (``churned``) or to ``end`` (censored), and its ``group``
    (the value of ``spec.by``, as text) when the table has that column."""
    start, end = pd.Timestamp(spec.start), pd.Timestamp(spec.end)
    gone = pd.to_datetime(partners[spec.date])
    cohort = (gone.isna() | (gone > start)).to_numpy()
    if spec.joined is not None and spec.joined in partners:        # (not those who join later)
        cohort = cohort & (pd.to_datetime(partners[spec.joined]) <= start).to_numpy()
    gone = gone[cohort]
    churned = (gone.notna() & (gone <= end)).to_numpy()
    out = pd.DataFrame({"days": ((gone.where(churned, end) - start) / pd.Timedelta(days=1)).to_numpy(),
                        "churned": churned})
    if spec.by is not None and spec.by in partners:
        out["group"] = partners.loc[cohort, spec.by].astype(str).to_numpy()
    return out


def kaplan_meier(days: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan–Meier estimate (time 0 first, then each distinct time): S(t) = prod over
    times u <= t of (1 - churned at u / at risk at u). scipy.stats.ecdf on the same censored
    data gives the same to 1e-12 (tests/test_review.py checks it); the product is a few
    lines of numpy (lifelines' import alone takes about 1.4 s, and it holds pandas below 3)."""
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
    p = Panel(640, 360, title=spec.title, xlabel=f"days since {spec.since}", ylabel="survival", xlim=(0, horizon),
              ylim=(0, 1.02), legend="right")
    for i, (name, g) in enumerate(groups):
        at, surviving = kaplan_meier(g["days"].to_numpy(), g["churned"].to_numpy())
        p.line(at, surviving, PALETTE[i % len(PALETTE)], width=2 if i == 0 else 1.2, step=True,
               label=f"{name} (n={len(g):,})")
    t = np.linspace(0, horizon, 200)
    p.line(t, (1 - spec.declared_hazard) ** (t / spec.period_days), "#000", width=1, dash="4,3",
           label="declared (target_rate)")
    return image(render([[p]]))
