"""Support tickets with text: open and resolved tickets, each written from a template of
a tone drawn from the partner's weights (declared expressions, e.g. of frustration).

Negative sentiment is measured, not drawn: every distinct template is scored once by
VADER (a lexicon-based analyzer that ships its lexicon), a text's negativity is
``max(0, -compound)`` (0 neutral or positive, up to 1 very negative), and a partner's
score is the mean over its tickets (0 with none).

Tickets are opened within the ``window_days`` up to each partner's observation end, on
its live days only (a partner of 5 days opened its tickets in those 5 days); their count
and status do not depend on its age.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..expr import evaluate
from . import reduce as R
from .kind import LIVE, Kind, lower_date

SEARCH_TICKETS = 6   # golden records: all combinations of texts for up to this many tickets


@functools.lru_cache(maxsize=8)
def negativity(texts: tuple[str, ...]) -> np.ndarray:
    """max(0, -VADER compound) of each distinct text, scored once."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    analyzer = SentimentIntensityAnalyzer()
    return np.array([max(0.0, -analyzer.polarity_scores(t)["compound"]) for t in texts])


def templates(h) -> tuple[tuple[str, ...], np.ndarray]:
    """All template texts (tone by tone, in declared order) and each one's tone index."""
    texts, tone_of = [], []
    for j, tone in enumerate(h.options["tones"]):
        for text in h.options["templates"][tone]:
            texts.append(text)
            tone_of.append(j)
    return tuple(texts), np.array(tone_of)


def generate(h, inp, rng, full: bool):
    open_ = np.asarray(inp["open"], dtype=np.int64)
    resolved = np.asarray(inp["resolved"], dtype=np.int64)
    m = open_.size
    count = open_ + resolved
    owner = np.repeat(np.arange(m), count)
    first = np.cumsum(count) - count
    status_open = (np.arange(owner.size) - first[owner]) < open_[owner]
    weights = np.stack([np.clip(evaluate(e, inp, m), 0, None) for e in h.options["tones"].values()], axis=1)
    weights = weights / np.where(weights.sum(1, keepdims=True) > 0, weights.sum(1, keepdims=True), 1)
    cdf = np.cumsum(weights, axis=1)[owner]
    tone = np.minimum((rng("tone").random(owner.size)[:, None] > cdf).sum(axis=1), weights.shape[1] - 1)
    texts, tone_of = templates(h)
    sizes = np.bincount(tone_of, minlength=weights.shape[1])
    starts = np.cumsum(sizes) - sizes
    template = starts[tone] + np.floor(rng("template").random(owner.size) * sizes[tone]).astype(np.int64)
    span = np.minimum(np.maximum(np.asarray(inp[LIVE], dtype=np.int64), 1), h.options["window_days"])
    days = np.floor(rng("opened").random(owner.size) * span[owner]).astype(np.int16)   # days before the end
    return {"owner": owner, "open": status_open, "template": template, "days_before": days, "m": m}


def reduce(h, b):
    texts, _ = templates(h)
    owner, m = b["owner"], b["m"]
    return {
        "open_count": np.bincount(owner[b["open"]], minlength=m),
        "tickets": np.bincount(owner, minlength=m),
        "negativity": R.group_mean(negativity(texts)[b["template"]], owner, m, empty=0.0),
    }


def frame(h, b, codes, key):
    """One row per ticket; ``opened_at`` in days before the end."""
    texts, _ = templates(h)
    n = b["owner"].size
    return pd.DataFrame({
        key.column: pd.Categorical.from_codes(codes[b["owner"]].astype(np.int32), dtype=key.dtype),
        "opened_at": b["days_before"],
        "status": pd.Categorical.from_codes(np.where(b["open"], 0, 1).astype(np.int8), categories=["open", "resolved"]),
        "text": pd.Categorical.from_codes(b["template"], categories=list(texts)),   # texts are distinct
    }, index=pd.RangeIndex(n))


def schema(h, spec):
    texts, _ = templates(h)
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "opened_at": pa.Column("datetime64[us]", pa.Check.in_range(
            lower_date(spec, h.options["window_days"]), spec.feature_date)),
        "status": pa.Column("category", pa.Check.isin(["open", "resolved"])),
        "text": pa.Column("category", pa.Check.isin(list(texts))),
    }, strict=True, ordered=True, name=h.table)


def realize_negativity(h, b, row, target, decimals):
    """Re-choose this partner's ticket texts so that the mean negativity, rounded, equals
    ``target``: tickets beyond the first few take the text closest to the target, and
    every combination of distinct scores is tried for the first few."""
    texts, _ = templates(h)
    neg = negativity(texts)
    mine = np.flatnonzero(b["owner"] == row)
    if mine.size == 0:
        if round(0.0, decimals) == target:
            return
        raise ValueError("it has no tickets; pin a ticket count of at least 1")
    vary, rest = mine[:SEARCH_TICKETS], mine[SEARCH_TICKETS:]
    b["template"][rest] = np.abs(neg - target).argmin()
    scores, template_of = np.unique(neg, return_index=True)
    combos = np.array(list(itertools.combinations_with_replacement(range(scores.size), vary.size)), dtype=np.int16)
    means = (neg[b["template"][rest]].sum() + scores[combos].sum(axis=1)) / mine.size
    hit = np.flatnonzero(np.abs(means - target) < 0.5 * 10.0 ** -decimals * 0.999)
    if hit.size == 0:
        raise ValueError(f"no choice of its ticket texts gives a mean negativity of {target}")
    b["template"][vary] = template_of[combos[hit[0]]]


KIND = Kind(
    name="tickets",
    inputs={"open": "open (unresolved) tickets (realized exactly)", "resolved": "resolved tickets"},
    options={"window_days": ("int", 90, 1), "tones": ("exprs", None, None), "templates": ("texts", None, None)},
    aggregates={"open_count": "open tickets", "tickets": "all tickets",
                "negativity": "mean of max(0, -VADER compound) over the partner's ticket texts (0 with none)"},
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    span=lambda h: h.options["window_days"], dates=("opened_at",),
    realize={"negativity": realize_negativity},
)
