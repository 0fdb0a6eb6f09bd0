"""report.html: a self-contained page (plots embedded as SVG) for reviewing a run.

The declared-vs-realized table with misses highlighted, the invariants, then every
stage's figures in stage order: each stage specifies its own (``Reviewed.figures``:
commission concentration and churn by segment, histories and features by churn class,
survival by churn scenario, each feature's AUC alone and the oracle's beside the declared
band, histories by churn scenario, scenario shares, uplift, fan-out) and
``review.figures`` draws them.
"""
from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

from ..stage import WorldSpec
from .canvas import Html, Image, Payload, html_table
from .figures import draw


TARGET_HEAD = ("target", "declared", "realized", "difference", "SE", "z", "tolerance", "rule", "n")


def _target_row(t: Mapping) -> str:
    """A target's row: declared, realized, their difference, the realized value's standard
    error, z (the difference in standard errors) and the tolerance of the target's rule (a
    miss beyond it), so a reader sees why a row is or is not a miss."""
    realized, se = t["realized"], t.get("se")
    diff = None if realized is None else realized - t["declared"]
    z = None if diff is None or not se else diff / se
    said = [t[k] for k in ("condition", "note") if t.get(k)]        # an effect row's condition, a note
    note = f' <span class="note">{html.escape("; ".join(said))}</span>' if said else ""
    cells = [f"{t['declared']:.4g}", "" if realized is None else f"{realized:.4g}",
             "" if diff is None else f"{diff:+.3g}", "" if se is None else f"{se:.2g}",
             "" if z is None else f"{z:+.1f}", "" if t.get("tolerance") is None else f"{t['tolerance']:.3g}"]
    return (f"<tr{' class=miss' if t['miss'] else ''}><td>{html.escape(t['target'])}{note}</td>"
            + "".join(f"<td class=n>{c}</td>" for c in cells)
            + f"<td>{html.escape(t.get('rule', ''))}</td><td class=n>{t['n']:,}</td></tr>")


def _targets_table(stats: Mapping) -> str:
    """The misses first, in a table of their own (largest difference for its tolerance
    first); the targets met after them, folded (``<details>``), in declared order."""
    head = "<tr>" + "".join(f"<th{'' if h in ('target', 'rule') else ' class=n'}>{h}</th>" for h in TARGET_HEAD) + "</tr>"
    table = lambda rows: f"<table class=targets>{head}{''.join(map(_target_row, rows))}</table>"
    rule = ("<p class=note>A target is missed when realized and declared differ by more than its tolerance: "
            "4 standard errors or 0.005, whichever is larger; for a feature measured from data, 4 standard "
            "errors plus a tenth of the declared sd; for a heavy tail's top-20% share, 2 points. z: the "
            "difference in standard errors.</p>")
    missed = sorted((t for t in stats["targets"] if t["miss"]),
                    key=lambda t: -abs((t["realized"] or 0) - t["declared"]) / (t.get("tolerance") or 1))
    met = [t for t in stats["targets"] if not t["miss"]]
    out = rule + (f"<h3>Missed ({len(missed)})</h3>{table(missed)}" if missed else "<p>No declared target missed.</p>")
    if met:
        out += f"<details><summary>Met ({len(met)} targets)</summary>{table(met)}</details>"
    return out


STYLE = """body{font-family:sans-serif;margin:1em 2em} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;overflow-wrap:anywhere} .n{text-align:right}
td.n{white-space:nowrap} tr.miss{background:#fdd;font-weight:bold} .note{color:#777;font-weight:normal}
summary{cursor:pointer;margin:0.5em 0} img{max-width:100%;height:auto}
.panels{display:flex;flex-wrap:wrap;gap:0 2.5em;align-items:flex-start} .panels>section{min-width:0;max-width:100%}
.headline li{margin:0.15em 0} @media (max-width:700px){body{margin:0.5em}}"""


def _headline(stats: Mapping) -> str:
    """The values the stages name for the headline (stats.json's ``headline``), each under
    its name: what it measures, realized or declared."""
    realized = stats["realized"]
    form = {"rate": lambda v: f"{v:.2%}", "auc": lambda v: f"{v:.3f}", "count": lambda v: f"{v:,}",
            "band": lambda v: f"{v['min']:.2f} to {v['max']:.2f}"}
    items = [f"<li>{html.escape(h['label'])}: <b>{form[h['form']](realized[h['key']])}</b></li>"
             for h in stats.get("headline", [])]
    return f"<ul class=headline>{''.join(items)}</ul>" if items else ""


def _invariants_table(stats: Mapping) -> str:
    rows = [[i["stage"], i["invariant"], i["violations"]] for i in stats.get("invariants", [])]
    return html_table(["stage", "invariant", "violations"], rows).text if rows else ""


def panel(title: str, payload: Payload) -> str:
    """A titled section: ``payload`` an HTML table, or a figure from :func:`image`."""
    match payload:
        case Html(text=text):
            return f"<section><h2>{html.escape(title)}</h2>{text}</section>"
        case Image(svg_base64=svg):
            return (f"<section><h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
                    f"src='data:image/svg+xml;base64,{svg}'></section>")
    raise TypeError(f"not a panel payload: {payload!r}")


def render(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], stats: Mapping) -> str:
    """The whole page as one HTML string: the targets table, the invariants, then every
    stage's figures (an SVG, or an HTML table). ``stats``: stats.json's contents."""
    # every stage's figure specifications, drawn here (review.figures), in stage order
    figures = draw([f for s in spec.stages for f in s.figures(spec, tables)], spec, tables, stats)
    images = "".join(panel(title, payload) for title, payload in figures)
    counts = ", ".join(f"{len(t):,} {name}" for name, t in tables.items())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>World report (seed {spec.seed})</title>"
            f"<style>{STYLE}</style></head><body><h1>World report</h1>"
            f"<p>seed {spec.seed}, as of {str(spec.as_of)[:10]}: {counts}. "
            f"{stats['misses']} of {len(stats['targets'])} declared targets missed.</p>{_headline(stats)}"
            f"<h2>Declared vs realized</h2>{_targets_table(stats)}"
            f"<h2>Invariants of the timeline</h2>{_invariants_table(stats)}"
            f"<div class=panels>{images}</div></body></html>")
