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
from . import draws as D
from .kind import LIVE, NO_DATE, Forward, Kind, lower_date, upper_date

SEARCH_TICKETS = 6   # golden records: all combinations of texts for up to this many tickets
PERIOD = 30          # a horizon's period: tickets run forward this many days at a time


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


def _tones(h, inp, rng, owner):
    """Each ticket's template: a tone drawn from its partner's weights, then a text of it."""
    m = np.asarray(inp["open"]).size
    weights = np.stack([np.clip(evaluate(e, inp, m), 0, None) for e in h.options["tones"].values()], axis=1)
    weights = weights / np.where(weights.sum(1, keepdims=True) > 0, weights.sum(1, keepdims=True), 1)
    cdf = np.cumsum(weights, axis=1)[owner]
    tone = np.minimum((rng("tone").random(owner.size)[:, None] > cdf).sum(axis=1), weights.shape[1] - 1)
    _, tone_of = templates(h)
    sizes = np.bincount(tone_of, minlength=weights.shape[1])
    starts = np.cumsum(sizes) - sizes
    return starts[tone] + np.floor(rng("template").random(owner.size) * sizes[tone]).astype(np.int64)


def generate(h, inp, rng, full: bool):
    open_ = np.asarray(inp["open"], dtype=np.int64)
    resolved = np.asarray(inp["resolved"], dtype=np.int64)
    m = open_.size
    count = open_ + resolved
    owner = np.repeat(np.arange(m), count)
    first = np.cumsum(count) - count
    status_open = (np.arange(owner.size) - first[owner]) < open_[owner]
    template = _tones(h, inp, rng, owner)
    span = np.minimum(np.maximum(np.asarray(inp[LIVE], dtype=np.int64), 1), h.options["window_days"])
    days = np.floor(rng("opened").random(owner.size) * span[owner]).astype(np.int16)   # days before the end
    return {"owner": owner, "open": status_open, "template": template, "days_before": days, "m": m}


NOT_RESOLVED = np.iinfo(np.int64).max      # a forward ticket's resolution day while it is open


def _joined(inp):
    """The inputs with no tickets for a partner not joined yet (live days below 1)."""
    joined = np.asarray(inp[LIVE], dtype=np.int64) >= 1
    return {**inp, "open": np.where(joined, inp["open"], 0), "resolved": np.where(joined, inp["resolved"], 0)}


def start(h, inp, rng, full: bool, periods: int, exact: bool = False, lag: int = 0, rows: int = 0):
    """:func:`generate` at a horizon's first date, each ticket given the day it opened and,
    when resolved, a day it was resolved on (days from that date: 0 is the date); the
    history is framed once, from the last block (:func:`frame_history`)."""
    b = generate(h, _joined(inp), rng, full)
    opened = -b["days_before"].astype(np.int64)
    gap = rng("resolved-day").random(opened.size)
    resolved = np.where(b["open"], NOT_RESOLVED, opened + np.floor(gap * (1 - opened)).astype(np.int64))
    return _view(h, {"owner": b["owner"], "opened": opened, "resolved": resolved, "template": b["template"]},
                 0, b["m"])


def _view(h, t, today, m):
    """The block on day ``today``: the tickets opened in the last window_days, or still
    open (the statistics' tickets), as :func:`generate` gives them."""
    open_now = t["resolved"] > today
    seen = np.flatnonzero(((t["opened"] > today - h.options["window_days"]) | open_now) & (t["opened"] <= today))
    return {"tickets": t, "today": today, "m": m, "seen": seen, "owner": t["owner"][seen], "open": open_now[seen],
            "template": t["template"][seen], "days_before": today - t["opened"][seen]}


def advance(h, b, inp, rng, full: bool, exact: bool = False, lag: int = 0):
    """The block 30 days later: the partner's open tickets brought to this date's open count
    exactly (the oldest resolved on a day of the period, or new ones opened on its live days
    and left open), and the period's share (30 / window_days) of its resolved count opened
    and resolved within it."""
    inp = _joined(inp)
    t, today, period = b["tickets"], b["today"] + PERIOD, PERIOD
    m = np.asarray(inp["open"]).size            # (the partners joined by this date: the first ones)
    live = np.asarray(inp[LIVE], dtype=np.int64)
    target = np.asarray(inp["open"], dtype=np.int64)
    open_now = np.flatnonzero(t["resolved"] == NOT_RESOLVED)
    order = open_now[np.lexsort((t["opened"][open_now], t["owner"][open_now]))]     # by partner, oldest first
    have = np.bincount(t["owner"][order], minlength=m)
    rank = np.arange(order.size) - (np.cumsum(have) - have)[t["owner"][order]]
    close = order[rank < (have - target)[t["owner"][order]]]
    since = np.maximum(t["opened"][close], today - period)
    t["resolved"][close] = since + 1 + np.floor(rng("resolve").random(close.size) * (today - since)).astype(np.int64)
    room = np.clip(np.minimum(period, live), 0, None)                 # the period's live days
    extra = D.stochastic_round(np.asarray(inp["resolved"], dtype=float) * period / h.options["window_days"],
                               rng("resolved-count").random(m)) * (room > 0)
    new_open = np.clip(target - have, 0, None)
    owner = np.concatenate([np.repeat(np.arange(m), new_open), np.repeat(np.arange(m), extra)])
    opened = today - np.floor(rng("opened").random(owner.size) * room[owner]).astype(np.int64)
    stays = np.arange(owner.size) < new_open.sum()
    gap = rng("resolved-day").random(owner.size)
    resolved = np.where(stays, NOT_RESOLVED, opened + np.floor(gap * (today + 1 - opened)).astype(np.int64))
    new = {"owner": owner, "opened": opened, "resolved": resolved, "template": _tones(h, inp, rng, owner)}
    for k in t:                       # (one history for every block: an earlier block's tickets keep their places)
        t[k] = np.concatenate([t[k], new[k]])
    return _view(h, t, today, m)


def pinned(h, b):
    """A golden record's texts, re-chosen on the block, carried into the history."""
    b["tickets"]["template"][b["seen"]] = b["template"]


def frame_history(h, b, codes, key):
    """Every ticket of the horizon from the last block: when it opened and when it was
    resolved (null while open), in days before that block's end."""
    texts, _ = templates(h)
    t, today = b["tickets"], b["today"]
    order = np.argsort(t["owner"], kind="stable")
    resolved = t["resolved"][order]
    return pd.DataFrame({
        key.column: pd.Categorical.from_codes(codes[t["owner"][order]].astype(np.int32), dtype=key.dtype),
        "opened_at": (today - t["opened"][order]).astype(np.int16),
        "resolved_at": np.where(resolved == NOT_RESOLVED, NO_DATE, today - np.minimum(resolved, today)).astype(np.int16),
        "text": pd.Categorical.from_codes(t["template"][order], categories=list(texts)),
    })


def reduce(h, b):
    texts, _ = templates(h)
    owner, m = b["owner"], b["m"]
    # (a horizon's block reads its texts from the history, where a golden record's are re-chosen)
    template = b["tickets"]["template"][b["seen"]] if "tickets" in b else b["template"]
    return {
        "open_count": np.bincount(owner[b["open"]], minlength=m),
        "tickets": np.bincount(owner, minlength=m),
        "negativity": R.group_mean(negativity(texts)[template], owner, m, empty=0.0),
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
    if spec.timeline is not None and spec.timeline.snapshots > 1:     # a horizon: when resolved, not a status
        return pa.DataFrameSchema({
            spec.key: pa.Column("category"),
            "opened_at": pa.Column("datetime64[us]", pa.Check.in_range(
                lower_date(spec, h.options["window_days"]), upper_date(spec))),
            "resolved_at": pa.Column("datetime64[us]", pa.Check.le(upper_date(spec)), nullable=True),
            "text": pa.Column("category", pa.Check.isin(list(texts))),
        }, strict=True, ordered=True, name=h.table, checks=[
            pa.Check(lambda df: df["resolved_at"].isna() | (df["resolved_at"] >= df["opened_at"]),
                     name="resolved on or after it opened")])
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
    span=lambda h: h.options["window_days"], dates=("opened_at", "resolved_at"),
    realize={"negativity": realize_negativity},
    forward=Forward(start, advance, PERIOD, rewrites=True, frame_history=frame_history, pinned=pinned),
)
