"""report.html: a self-contained page (plots embedded as PNG) for reviewing a run.

The declared-vs-realized table with misses highlighted, a Lorenz curve of every
heavy-tailed column, churn rate by every label column and by scenario, feature
distributions by churn class, realized uplift by intervention type and table row, and
the network's fan-out. matplotlib is imported here only, after the tables are written.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .spec import WorldSpec

MAX_POINTS = 2000                            # plotted points per curve, whatever the size
PLOT_ROWS = 50_000                          # partners drawn in the plots (stats.json uses all)


def _figure(**kwargs):
    """A figure outside pyplot's global state, so the report can render in a worker thread."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _lorenz(spec: WorldSpec, partners: pd.DataFrame):
    cols = [c.name for c in spec.columns if c.sampler in ("pareto", "lognormal") and c.keep]
    if not cols:
        return None
    fig = _figure(figsize=(5, 4))
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
    return _png(fig)


def _churn_by(spec: WorldSpec, partners: pd.DataFrame):
    label = spec.churn.label
    by = [c.name for c in spec.columns if c.domain.dtype == "category" and c.keep]
    fig = _figure(figsize=(3.2 * (len(by) + 1), 3.4))
    axes = fig.subplots(1, len(by) + 1)
    fig.subplots_adjust(bottom=0.3, wspace=0.3)
    for ax, name in zip(axes, by):
        rate = partners.groupby(name, observed=True)[label].mean()
        ax.bar(rate.index.astype(str), rate.to_numpy(), color="#1f77b4")
        ax.axhline(spec.churn.target_rate, color="k", ls="--", lw=0.8)
        ax.set(title=f"churn rate by {name}", ylim=(0, max(0.5, rate.max() * 1.1)))
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    shares = partners[spec.scenarios.column].value_counts(normalize=True)
    axes[-1].bar(shares.index.astype(str), shares.to_numpy(), color="#d62728")
    axes[-1].set(title="scenario shares")
    axes[-1].tick_params(axis="x", labelrotation=45, labelsize=7)
    return _png(fig)


def _features_by_class(spec: WorldSpec, partners: pd.DataFrame, panels: int = 8):
    """Distributions by churn class of the features that separate the classes most
    (largest standardized mean difference), plus that difference for every feature."""
    label = spec.churn.label
    churned = partners[label].to_numpy()
    domains = spec.domains()
    declared = spec.engineered.features if spec.engineered else [c.name for c in spec.columns if c.keep]
    names = [n for n in declared if domains[n].dtype in ("float", "int") and n in partners.columns]
    if not names or churned.all() or not churned.any():
        return None
    values = {n: partners[n].to_numpy(dtype=float) for n in names}
    smd = {n: (np.nanmean(x[churned]) - np.nanmean(x[~churned])) / (np.nanstd(x) or 1) for n, x in values.items()}
    top = sorted(names, key=lambda n: -abs(smd[n]))[:panels]
    fig = _figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(3, 4, hspace=0.55, wspace=0.3)
    bar = fig.add_subplot(grid[0, :])
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(4)] for r in range(1, 3)])
    order = sorted(names, key=lambda n: smd[n])
    bar.barh(order, [smd[n] for n in order], color=["#d62728" if smd[n] < 0 else "#1f77b4" for n in order])
    bar.set_title("standardized mean difference, churned - healthy", fontsize=9)
    bar.tick_params(labelsize=6)
    for ax, name in zip(axes.ravel(), top):
        x = values[name]
        lo, hi = np.nanpercentile(x, [0.5, 99.5])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        for mask, lab, color in ((~churned, "healthy", "#1f77b4"), (churned, "churned", "#d62728")):
            counts, _ = np.histogram(np.clip(x[mask], lo, hi), bins=bins, density=True)
            ax.stairs(counts, bins, fill=True, alpha=0.5, label=lab, color=color)   # one artist, not 40 bars
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.locator_params(nbins=4)
    axes[0, 0].legend(fontsize=7)
    for ax in axes.ravel()[len(top):]:
        ax.axis("off")
    return _png(fig)


def _histories(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]):
    """Churners' and healthy partners' histories on average: the 30-day login count day by
    day, and the monthly commission (when the daily tables were written)."""
    partners = tables["partners"]
    label = partners[spec.churn.label].to_numpy()
    panels = [(t, value, date, window) for t, value, date, window in
              (("activity_daily", "logins", "activity_date", 30), ("commissions_daily", "amount", "commission_date", 0))
              if t in tables]
    if not panels or label.all() or not label.any():
        return None
    fig = _figure(figsize=(10, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, value, date, window) in zip(axes, panels):
        t = tables[name]
        # partner_id is a categorical over all partners, in partners order: its code is the row
        churned = label[t["partner_id"].cat.codes.to_numpy()]
        day = ((spec.as_of - t[date].to_numpy()) // np.timedelta64(1, "D")).astype(np.int64)
        k = int(day.max()) + 1
        totals = np.bincount(churned * k + day, weights=t[value].to_numpy(dtype=float), minlength=2 * k)
        per_day = totals.reshape(2, k)[:, ::-1] / np.array([(~label).sum(), label.sum()])[:, None]
        if window:                                         # the trailing 30-day count, as the trend reads it
            series = np.cumsum(per_day, axis=1)
            series = (series - np.concatenate([np.zeros((2, window)), series[:, :-window]], axis=1))[:, -window:]
            x, title, ylabel = np.arange(-window + 1, 1), "30-day login count, last 30 days", "logins"
        else:                                              # 30-day months
            series = per_day[:, per_day.shape[1] % 30:].reshape(2, -1, 30).sum(axis=2)
            x, title, ylabel = np.arange(-series.shape[1] + 1, 1), "commission per 30-day month", "$ per partner"
        for row, lab, color in ((0, "healthy", "#1f77b4"), (1, "churned", "#d62728")):
            ax.plot(x, series[row], label=lab, color=color, marker="" if window else "o")
        ax.set(title=title, xlabel="days before as_of" if window else "months before as_of", ylabel=ylabel)
        ax.legend(fontsize=7)
    return _png(fig)


def _uplift(spec: WorldSpec, stats: Mapping):
    rows = [t for t in stats["targets"] if t["target"].startswith("interventions.effects")]
    if not rows:
        return None
    fig = _figure(figsize=(8, 3.5))
    ax = fig.subplots()
    names = [t["target"].removeprefix("interventions.effects.").removesuffix(".effect") for t in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [t["declared"] for t in rows], 0.4, label="declared", color="#7f7f7f")
    ax.bar(x + 0.2, [t["realized"] or 0 for t in rows], 0.4, label="realized mean", color="#2ca02c")
    ax.set_xticks(x, names, rotation=45, fontsize=7)
    ax.set(title="uplift by intervention type and table row (segment)", ylabel="effect on churn probability")
    ax.legend(fontsize=7)
    return _png(fig)


def _fanout(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]):
    net = spec.network
    partners = tables["partners"]
    masters = partners.loc[partners[net.masters], spec.id.column]
    fan = tables[net.table]["master_affiliate_id"].value_counts().reindex(masters, fill_value=0)
    fig = _figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.hist(fan.to_numpy(), bins=np.arange(0, net.fanout[1] + 2) - 0.5, color="#9467bd")
    ax.set(title="subs per master", xlabel="subs", ylabel="masters")
    return _png(fig)


def _targets_table(stats: Mapping) -> str:
    head = "<tr><th>target</th><th>declared</th><th>realized</th><th>n</th></tr>"
    rows = []
    for t in stats["targets"]:
        cls = ' class="miss"' if t["miss"] else ""
        note = f' <span class="note">{html.escape(t["note"])}</span>' if t.get("note") else ""
        rows.append(f"<tr{cls}><td>{html.escape(t['target'])}{note}</td><td>{t['declared']:.4g}</td>"
                    f"<td>{'' if t['realized'] is None else format(t['realized'], '.4g')}</td><td>{t['n']:,}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} td:first-child{text-align:left}
tr.miss{background:#fdd;font-weight:bold} .note{color:#777;font-weight:normal} img{max-width:100%}"""


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row up to PLOT_ROWS, else an evenly spaced subset: plots don't need a million."""
    if len(frame) <= PLOT_ROWS:
        return frame
    return frame.iloc[np.linspace(0, len(frame) - 1, PLOT_ROWS).astype(np.int64)]


def render(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], stats: Mapping) -> str:
    """The whole page as one HTML string."""
    partners = _sample(tables["partners"])
    figures = [("Commission concentration", _lorenz(spec, partners)),
               ("Churn by segment", _churn_by(spec, partners)),
               ("Features by churn class", _features_by_class(spec, partners)),
               ("Histories by churn class", _histories(spec, tables)),
               ("Uplift", _uplift(spec, stats)),
               ("Network fan-out", _fanout(spec, tables))]
    images = "".join(f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{png}'>"
                     for title, png in figures if png)
    counts = ", ".join(f"{len(t):,} {name}" for name, t in tables.items())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>World report (seed {spec.seed})</title>"
            f"<style>{STYLE}</style></head><body><h1>World report</h1>"
            f"<p>seed {spec.seed}, as of {str(spec.as_of)[:10]}: {counts}. Churn rate "
            f"{stats['realized']['churn_rate']:.2%} (target {spec.churn.target_rate:.0%}); "
            f"{stats['misses']} of {len(stats['targets'])} declared targets missed (highlighted).</p>"
            f"<h2>Declared vs realized</h2>{_targets_table(stats)}{images}</body></html>")
