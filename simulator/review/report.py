"""report.html: a self-contained page (plots embedded as SVG) for reviewing a run.

The declared-vs-realized table with misses highlighted, the invariants, then every
stage's figures in stage order: each stage specifies its own (``Stage.figures``:
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


def _invariants_table(stats: Mapping) -> str:
    rows = [[i["stage"], i["invariant"], i["violations"]] for i in stats.get("invariants", [])]
    return html_table(["stage", "invariant", "violations"], rows).text if rows else ""


def panel(title: str, payload: Payload) -> str:
    """A titled section: ``payload`` an HTML table, or a figure from :func:`image`."""
    match payload:
        case Html(text=text):
            return f"<h2>{html.escape(title)}</h2>{text}"
        case Image(svg_base64=svg):
            return f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/svg+xml;base64,{svg}'>"
    raise TypeError(f"not a panel payload: {payload!r}")


def render(spec: WorldSpec, tables: Mapping[str, pd.DataFrame], stats: Mapping) -> str:
    """The whole page as one HTML string: the targets table, the invariants, then every
    stage's figures (an SVG, or an HTML table). ``stats``: stats.json's contents."""
    # every stage's figure specifications, drawn here (review.figures), in stage order
    figures = draw([f for s in spec.stages for f in s.figures(spec, tables)], spec, tables, stats)
    images = "".join(panel(title, payload) for title, payload in figures)
    counts = ", ".join(f"{len(t):,} {name}" for name, t in tables.items())
    headline = "".join(f"{html.escape(k.replace('_', ' '))} {v:{'.3f' if 'auc' in k else '.2%'}}; "
                       for k, v in stats["realized"].items() if isinstance(v, float))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>World report (seed {spec.seed})</title>"
            f"<style>{STYLE}</style></head><body><h1>World report</h1>"
            f"<p>seed {spec.seed}, as of {str(spec.as_of)[:10]}: {counts}. {headline}"
            f"{stats['misses']} of {len(stats['targets'])} declared targets missed (highlighted).</p>"
            f"<h2>Declared vs realized</h2>{_targets_table(stats)}"
            f"<h2>Invariants of the timeline</h2>{_invariants_table(stats)}{images}</body></html>")
