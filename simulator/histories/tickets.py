"""Support tickets with text: open and resolved tickets, each about a topic and written in
a tone, both drawn per ticket from the partner's weights (declared expressions of its
state, e.g. a late payout makes a payout ticket likelier, frustration an angry one).

A ticket's text is composed from declared phrase banks: an opening of its tone, a body of
its topic and tone, and a closing of its tone. Every combination is a distinct text
(6 topics x 4 tones x 4 x 3 x 4 phrases: 1,152 in the default), so a partner's tickets
read like a person's, not like one of a few templates.

Negative sentiment is measured, not drawn: every distinct text is scored once by VADER (a
lexicon-based analyzer that ships its lexicon), a text's negativity is
``max(0, -compound)`` (0 neutral or positive, up to 1 very negative), and a partner's
score is the mean over its tickets (0 with none).

Tickets are opened within the ``window_days`` up to each partner's observation end, on
its live days only (a partner of 5 days opened its tickets in those 5 days); their count
and status do not depend on its age.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..expr import evaluate
from . import reduce as R
from . import draws as D
from .kind import LIVE, NO_DATE, Forward, Kind, lower_date, upper_date

SEARCH_TICKETS = 6   # golden records: all combinations of texts for up to this many tickets
SEARCH_SCORES = 24   # ... among at most this many distinct scores (spread over the range)
PERIOD = 30          # a horizon's period: tickets run forward this many days at a time
SLOTS = ("opening", "body", "closing")   # a text's parts, in order; the body's bank is per topic


@functools.lru_cache(maxsize=8)
def negativity(texts: tuple[str, ...]) -> np.ndarray:
    """max(0, -VADER compound) of each distinct text, scored once."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    analyzer = SentimentIntensityAnalyzer()
    return np.array([max(0.0, -analyzer.polarity_scores(t)["compound"]) for t in texts])


@functools.lru_cache(maxsize=8)
def _compose(phrases: tuple) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Every text of the phrase banks (topic by topic, tone by tone, in declared order) and
    the (topics x tones) first index and count of each one's texts."""
    opening, body, closing = phrases
    texts, sizes = [], []
    for by_tone in body:
        for j, bodies in enumerate(by_tone):
            combos = list(itertools.product(opening[j], bodies, closing[j]))
            texts.extend(" ".join(c) for c in combos)
            sizes.append(len(combos))
    sizes = np.array(sizes).reshape(len(body), len(opening))
    return tuple(texts), (np.cumsum(sizes) - sizes.ravel()).reshape(sizes.shape), sizes


def templates(h) -> tuple[str, ...]:
    """All texts, in the order a ticket's ``template`` indexes them."""
    return _compose(h.options["phrases"])[0]


def check(p, path: str, options: Mapping) -> Mapping | None:
    """The phrase banks normalized to tuples in the declared order of ``tones`` and
    ``topics``: ``opening`` and ``closing`` map every tone, ``body`` every topic then every
    tone, each to a non-empty list of distinct phrases; the composed texts are distinct."""
    tones, topics, banks = list(options["tones"]), list(options["topics"]), options["phrases"]
    before = len(p.items)
    for key in sorted(set(banks) - set(SLOTS)):
        p.add(f"{path}.phrases.{key}", f"unknown part of a text (parts: {', '.join(SLOTS)})")

    def phrases(where: str, value) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(t, str) and t.strip() for t in value):
            p.add(where, f"must be a non-empty list of phrases, got {value!r}")
            return ()
        if len(set(value)) != len(value):
            p.add(where, "phrases must be distinct")
        return tuple(value)

    def per(where: str, value, labels: list[str], what: str, inner) -> tuple:
        if not isinstance(value, Mapping) or list(value) != labels:
            p.add(where, f"must map each {what} ({', '.join(labels)}, in that order) to its phrases, "
                  f"got {list(value) if isinstance(value, Mapping) else value!r}")
            return ()
        return tuple(inner(f"{where}.{k}", value[k]) for k in labels)

    opening = per(f"{path}.phrases.opening", banks.get("opening"), tones, "tone", phrases)
    closing = per(f"{path}.phrases.closing", banks.get("closing"), tones, "tone", phrases)
    body = per(f"{path}.phrases.body", banks.get("body"), topics, "topic",
               lambda w, v: per(w, v, tones, "tone", phrases))
    if len(p.items) > before:
        return None
    normalized = (opening, body, closing)
    texts = _compose(normalized)[0]
    if len(set(texts)) != len(texts):
        p.add(f"{path}.phrases", "two combinations of phrases make the same text: each text must be distinct "
              "(it is scored once)")
        return None
    return {**options, "phrases": normalized}


def _draw(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The label each uniform picks from its row of weights (normalized)."""
    total = weights.sum(1, keepdims=True)
    cdf = np.cumsum(weights / np.where(total > 0, total, 1), axis=1)
    return np.minimum((u[:, None] > cdf).sum(axis=1), weights.shape[1] - 1)


def _tones(h, inp, rng, owner):
    """Each ticket's text: a topic and a tone drawn from its partner's weights, then a
    combination of the phrases of that topic and tone."""
    m = np.asarray(inp["open"]).size

    def weights(option):
        exprs = h.options[option]
        with np.errstate(all="ignore"):
            w = np.stack([np.broadcast_to(np.asarray(evaluate(e, inp, m), dtype=float), (m,)) for e in exprs.values()],
                         axis=1)
        for j, label in enumerate(exprs):         # (a user's expression: refused with its path, not run)
            bad = ~np.isfinite(w[:, j]) | (w[:, j] < 0)
            if bad.any():
                raise ValueError(f"{option}.{label}: must be a weight >= 0 for every partner, got "
                                 f"{float(w[bad, j][0]):g} for {int(bad.sum()):,} of them")
        none = (w.sum(axis=1) <= 0) & (np.bincount(owner, minlength=m) > 0)
        if none.any():
            raise ValueError(f"{option}: every weight is 0 for {int(none.sum()):,} partners with tickets; each "
                             f"needs one above 0 ({', '.join(exprs)})")
        return w

    tone = _draw(weights("tones")[owner], rng("tone").random(owner.size))
    topic = _draw(weights("topics")[owner], rng("topic").random(owner.size))
    _, starts, sizes = _compose(h.options["phrases"])
    return starts[topic, tone] + np.floor(rng("template").random(owner.size) * sizes[topic, tone]).astype(np.int64)


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
    texts = templates(h)
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
    texts = templates(h)
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
    texts = templates(h)
    n = b["owner"].size
    return pd.DataFrame({
        key.column: pd.Categorical.from_codes(codes[b["owner"]].astype(np.int32), dtype=key.dtype),
        "opened_at": b["days_before"],
        "status": pd.Categorical.from_codes(np.where(b["open"], 0, 1).astype(np.int8), categories=["open", "resolved"]),
        "text": pd.Categorical.from_codes(b["template"], categories=list(texts)),   # texts are distinct
    }, index=pd.RangeIndex(n))


def schema(h, spec):
    texts = templates(h)
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
    texts = templates(h)
    neg = negativity(texts)
    mine = np.flatnonzero(b["owner"] == row)
    if mine.size == 0:
        if round(0.0, decimals) == target:
            return
        raise ValueError("it has no tickets; pin a ticket count of at least 1")
    vary, rest = mine[:SEARCH_TICKETS], mine[SEARCH_TICKETS:]
    b["template"][rest] = np.abs(neg - target).argmin()
    scores, template_of = np.unique(neg, return_index=True)
    if scores.size > SEARCH_SCORES:                # (combinations grow as scores^tickets)
        keep = np.unique(np.round(np.linspace(0, scores.size - 1, SEARCH_SCORES)).astype(np.int64))
        scores, template_of = scores[keep], template_of[keep]
    combos = np.array(list(itertools.combinations_with_replacement(range(scores.size), vary.size)), dtype=np.int16)
    means = (neg[b["template"][rest]].sum() + scores[combos].sum(axis=1)) / mine.size
    hit = np.flatnonzero(np.abs(means - target) < 0.5 * 10.0 ** -decimals * 0.999)
    if hit.size == 0:
        raise ValueError(f"no choice of its ticket texts gives a mean negativity of {target}")
    b["template"][vary] = template_of[combos[hit[0]]]


KIND = Kind(
    name="tickets",
    inputs={"open": "open (unresolved) tickets (realized exactly)", "resolved": "resolved tickets"},
    options={"window_days": ("int", 90, 1), "tones": ("exprs", None, None), "topics": ("exprs", None, None),
             "phrases": ("mapping", None, None)},
    aggregates={"open_count": "open tickets", "tickets": "all tickets",
                "negativity": "mean of max(0, -VADER compound) over the partner's ticket texts (0 with none)"},
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    span=lambda h: h.options["window_days"], dates=("opened_at", "resolved_at"),
    realize={"negativity": realize_negativity},
    forward=Forward(start, advance, PERIOD, rewrites=True, frame_history=frame_history, pinned=pinned),
    check=check,
)
