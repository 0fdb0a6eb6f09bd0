"""report.html: a self-contained page (plots embedded as SVG) for reviewing a run.

The declared-vs-realized table with misses highlighted, then every stage's figures in
stage order (each stage kind draws its own: commission concentration and churn by
segment, histories and features by churn class, each feature's AUC alone and the oracle's
beside the declared band, histories by churn scenario, scenario shares, uplift, fan-out),
with the plotting helpers here. matplotlib is imported only when a figure is drawn, after the
tables are written.
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


def figure(**kwargs):
    """A figure outside pyplot's global state, so the report can render in a worker thread."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def image(fig) -> str:
    """The figure as SVG, base64 for an <img>: its text stays text, set by the browser
    rather than rasterized here (a quarter less time than a PNG, and sharp at any zoom);
    the same bytes every run (fixed ids, no date)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def lorenz(partners: pd.DataFrame, cols: list[str]):
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


def rates_by(partners: pd.DataFrame, label: str | None, by: list[str]):
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


def features_by_class(spec: WorldSpec, partners: pd.DataFrame, declared, panels: int = 8):
    """Distributions by churn class of the features that separate the classes most
    (largest standardized mean difference), plus that difference for every feature."""
    label = spec.role("label")
    if label is None:
        return None
    partners = sample(partners)
    churned = partners[label].to_numpy()
    domains = spec.domains()
    names = [n for n in declared if domains[n].dtype in ("float", "int") and n in partners.columns]
    if not names or churned.all() or not churned.any():
        return None
    values = {n: partners[n].to_numpy(dtype=float) for n in names}
    smd = {n: (np.nanmean(x[churned]) - np.nanmean(x[~churned])) / (np.nanstd(x) or 1) for n, x in values.items()}
    top = sorted(names, key=lambda n: -abs(smd[n]))[:panels]
    fig = figure(figsize=(12, 7.5))
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
    return image(fig)


def history_panels(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], panels: list):
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


def history_tables(spec: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> list:
    """(table, Panel) of every written history whose kind declares a panel, whichever
    stage declares it (a stage's ``histories``): none with activity=none or unwritten rows."""
    from .histories import KINDS

    return [(tables[h.table], KINDS[h.kind].panel) for s in spec.stages for h in getattr(s, "histories", ())
            if KINDS[h.kind].panel is not None and h.table in tables]


def scenario_histories(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], rows: pd.DataFrame,
                       label: str | None, scenario: str | None):
    """Each churn scenario's average history beside healthy partners' (the scenarios'
    signatures as a picture), over the partners of ``rows`` (the model-ready table: the
    cohort, all observed to the feature date), one panel per written history."""
    panels = history_tables(spec, tables)
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
    groups = [(f"healthy (n={(~churned).sum():,})", "k")]
    groups += [(f"{scenarios.cat.categories[c]} (n={k:,})", colors[i % len(colors)])
               for i, (c, k) in enumerate(zip(present, counts))]
    return _average_histories(spec, tables, panels, group, groups, "the feature date")


def _average_histories(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], panels: list,
                       group: np.ndarray, groups: list[tuple[str, str]],
                       end_name: str = "the feature date (or the day before leaving)"):
    """One panel per (table, Panel): each group's average history. ``group`` holds a group
    code per partners row (0 .. len(groups) - 1; len(groups): left out); an average is over
    every partner of its group, a day it has no row counting as no activity."""
    from .histories import observation_end

    g = len(groups)
    end = observation_end(spec, tables[spec.table])
    sizes = np.bincount(group, minlength=g + 1)[:g]
    beside = len(groups) > 2                               # a long legend beside the panels, not over a line
    width = 5 * len(panels) + 2.4 * beside
    fig = figure(figsize=(width, 3.6))
    fig.subplots_adjust(left=0.7 / width, right=1 - (2.5 * beside + 0.2) / width, bottom=0.16, top=0.9, wspace=0.25)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (t, panel) in zip(axes, panels):
        value, date, window = panel.value, panel.date, panel.window
        # the key is a categorical over all partners, in partners order: its code is the row
        codes = t[spec.key].cat.codes.to_numpy()
        day = ((end[codes] - t[date].to_numpy()) // np.timedelta64(1, "D")).astype(np.int64)
        k = int(day.max()) + 1
        totals = np.bincount(group[codes] * k + day, weights=t[value].to_numpy(dtype=float), minlength=(g + 1) * k)
        per_day = totals.reshape(g + 1, k)[:g, ::-1] / np.maximum(sizes, 1)[:, None]
        if window:                                         # the trailing window-day count, as the trend reads it
            series = np.cumsum(per_day, axis=1)
            series = (series - np.concatenate([np.zeros((g, window)), series[:, :-window]], axis=1))[:, -window:]
            x = np.arange(-window + 1, 1)
        else:                                              # 30-day months
            series = per_day[:, per_day.shape[1] % 30:].reshape(g, -1, 30).sum(axis=2)
            x = np.arange(-series.shape[1] + 1, 1)
        for row, (lab, color) in enumerate(groups):
            ax.plot(x, series[row], label=lab, color=color, marker="" if window else "o",
                    lw=2 if color == "k" else None)
        unit = "days" if window else "months"
        ax.set(title=panel.title, xlabel=f"{unit} before {end_name}", ylabel=panel.ylabel)
    if beside:                                             # the same groups in every panel
        fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=7)
    else:
        for ax in axes:
            ax.legend(fontsize=7)
    return image(fig)


def auc_bars(stats: Mapping):
    """Each feature's AUC alone (stats.json's ``feature_auc``), the declared single-feature
    maximum and the oracle's AUC as lines (None without feature AUCs)."""
    realized = stats.get("realized", {})
    aucs = {k: v for k, v in (realized.get("feature_auc") or {}).items() if v is not None}
    if not aucs:
        return None
    top, oracle = realized.get("feature_auc_max"), realized.get("oracle_auc")
    order = sorted(aucs, key=aucs.get)
    fig = figure(figsize=(7, 0.2 * len(order) + 1))
    fig.subplots_adjust(left=0.33, right=0.97, bottom=0.6 / (0.2 * len(order) + 1), top=0.98)
    ax = fig.subplots()
    over = [top is not None and aucs[n] > top for n in order]
    ax.barh(order, [aucs[n] - 0.5 for n in order], left=0.5, color=["#d62728" if o else "#1f77b4" for o in over])
    if top is not None:
        ax.axvline(top, color="k", ls="--", lw=1, label=f"declared maximum {top:.2f}")
    if oracle is not None:
        ax.axvline(oracle, color="#2ca02c", lw=1, label=f"oracle {oracle:.3f}")
    ax.set(xlim=(0.5, 1), xlabel="AUC of the feature alone (0.5: chance; either direction)")
    ax.tick_params(axis="y", labelsize=7)
    if top is not None or oracle is not None:
        ax.legend(fontsize=7, loc="lower right")
    return image(fig)


def learnability_table(stats: Mapping):
    """The oracle's AUC beside the declared band of a trained model's (the report trains
    none: the test suite does) and the best single feature beside its declared maximum."""
    realized = stats.get("realized", {})
    oracle, band = realized.get("oracle_auc"), realized.get("model_auc_band")
    best, top = realized.get("max_feature_auc"), realized.get("feature_auc_max")
    if oracle is None and band is None and best is None:
        return None
    reach = "" if band is None or oracle is None else (
        "at or above the band's minimum: the band is within reach" if oracle >= band["min"]
        else "below the band's minimum: no model can reach the band")
    rows = [["oracle: the churn probability given the latent state (an upper bound for any model)",
             "" if oracle is None else oracle, reach]]
    if band is not None:
        rows.append(["declared band of a trained model (HistGradientBoostingClassifier, the test suite)",
                     f"{band['min']:.2f} to {band['max']:.2f}", ""])
    if best is not None:
        rows.append(["best single feature, realized", best, "" if top is None else (
            "at or below the declared maximum" if best <= top else "above the declared maximum")])
    if top is not None:
        rows.append(["declared maximum of a single feature", top, ""])
    return html_table(["", "AUC", "check"], rows)


def _targets_table(stats: Mapping) -> str:
    head = "<tr><th>target</th><th class='n'>declared</th><th class='n'>realized</th><th class='n'>n</th></tr>"
    rows = []
    for t in stats["targets"]:
        cls = ' class="miss"' if t["miss"] else ""
        note = f' <span class="note">{html.escape(t["note"])}</span>' if t.get("note") else ""
        rows.append(f"<tr{cls}><td>{html.escape(t['target'])}{note}</td><td class='n'>{t['declared']:.4g}</td>"
                    f"<td class='n'>{'' if t['realized'] is None else format(t['realized'], '.4g')}</td>"
                    f"<td class='n'>{t['n']:,}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left} .n{text-align:right}
tr.miss{background:#fdd;font-weight:bold} .note{color:#777;font-weight:normal} img{max-width:100%}"""


def sample(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row up to PLOT_ROWS, else an evenly spaced subset: plots don't need a million."""
    if len(frame) <= PLOT_ROWS:
        return frame
    return frame.iloc[np.linspace(0, len(frame) - 1, PLOT_ROWS).astype(np.int64)]


def html_table(head: list[str], rows: list[list[object]]) -> str:
    """A small HTML table (a stage's panel may be one instead of a picture)."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    cell = lambda v: format(v, ".4g") if isinstance(v, float) else html.escape(f"{v:,}" if isinstance(v, int) else str(v))
    td = lambda v: f"<td class='n'>{cell(v)}</td>" if number(v) else f"<td>{cell(v)}</td>"
    # numbers right-aligned, and the heads of the columns that hold only numbers
    numeric = [bool(rows) and all(number(r[i]) or r[i] == "" for r in rows) for i in range(len(head))]
    th = "".join(f"<th class='n'>{html.escape(h)}</th>" if n else f"<th>{html.escape(h)}</th>"
                 for h, n in zip(head, numeric))
    return f"<table><tr>{th}</tr>" + "".join(f"<tr>{''.join(td(v) for v in r)}</tr>" for r in rows) + "</table>"


def _invariants_table(stats: Mapping) -> str:
    rows = [[i["stage"], i["invariant"], i["violations"]] for i in stats.get("invariants", [])]
    return html_table(["stage", "invariant", "violations"], rows) if rows else ""


def panel(title: str, payload: str) -> str:
    """A titled section: ``payload`` an HTML table, or a figure from :func:`image`."""
    if payload.startswith("<"):                 # an HTML table
        return f"<h2>{html.escape(title)}</h2>{payload}"
    return f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/svg+xml;base64,{payload}'>"


def render(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], stats: Mapping) -> str:
    """The whole page as one HTML string: the targets table, the invariants, then every
    stage's figures (a base64 SVG, or an HTML table)."""
    # each stage plots whole tables or, for per-partner plots, report.sample(...) of them
    figures = [fig for s in spec.stages for fig in s.figures(spec, tables, stats)]
    images = "".join(panel(title, payload) for title, payload in figures if payload)
    counts = ", ".join(f"{len(t):,} {name}" for name, t in tables.items())
    headline = "".join(f"{html.escape(k.replace('_', ' '))} {v:{'.3f' if 'auc' in k else '.2%'}}; "
                       for k, v in stats["realized"].items() if isinstance(v, float))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>World report (seed {spec.seed})</title>"
            f"<style>{STYLE}</style></head><body><h1>World report</h1>"
            f"<p>seed {spec.seed}, as of {str(spec.as_of)[:10]}: {counts}. {headline}"
            f"{stats['misses']} of {len(stats['targets'])} declared targets missed (highlighted).</p>"
            f"<h2>Declared vs realized</h2>{_targets_table(stats)}"
            f"<h2>Invariants of the timeline</h2>{_invariants_table(stats)}{images}</body></html>")
