"""Daily activity: logins, dashboard use, asset downloads and the partner's traffic.

The grid is the ``days`` days up to each partner's observation end ("the last 30 days"
are the 30 days up to it); a partner that joined later has activity, and rows, only on
its live days. Logins are built to three targets at once: the login count of the last 30 days (exact),
the days since the last login (exact: a login on that day, none after), and an intended
trend of the 30-day login count (in expectation). The trend is the least-squares slope of
the trailing 30-day count over the last 30 days (:func:`reduce.rolling_slope`), which is
linear in the daily counts; so the daily rate is given a linear shape whose *expected*
slope equals the target, solved in closed form per partner. Partners with very few logins
cannot realize a steep trend (the rate cannot go below zero); theirs is as close as the
shape allows; so can a partner that joined within the trend's 59 days, whose 30-day count
starts from nothing (days before joining count as days without logins). What a partner
can be expected to realize is :func:`expected_trend`, which the activity stage solves each
road's offset of the intended trend from, so that a road's mean meets its declaration.

Dashboard clicks, minutes and features used follow the logins, scaled by the partner's
engagement (0-1); downloads (exact 30-day total) happen on login days; traffic sessions,
bounces and session seconds follow the traffic volume and quality (0-1) so that
``(1 - bounce rate) * session seconds / reference`` is about the quality. These are drawn
as totals per span (the last 30 days, the days before) for the live days in it, and split
over those days only when the table is written, so reducing a million partners never
materializes their daily rows.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import draws as D
from . import reduce as R
from .calendar import day_weights
from .kind import LIVE, Faulty, Forward, Kind, Panel, days_to_end, first_live, live_grid, lower_date, partner_column, upper_date

WINDOW = 30          # the features' window: 30 days ending on the observation end
REFINE = 1           # corrections of the closed-form shape for the zero floor
MAX_RATE_SLOPE = 0.1  # bound on the relative daily change of the login rate


@functools.cache
def _trend_weights(k: int) -> np.ndarray:
    """The weights that make the login trend a dot product (R.rolling_slope_weights)."""
    w = R.rolling_slope_weights(k, WINDOW, WINDOW)
    w.flags.writeable = False
    return w


def _login_shape(h, logins, silent, trend, first, known=None, cal=None, expect=False):
    """Per partner: the relative daily login rate over the history (k days), and where
    logins may fall (live window days up to the last login, live pre-window days before
    it), weighted by the calendar's ``cal`` (its weights of the same days). ``known``: the
    days before the window are history already (a horizon's earlier period), this their
    part of the expected trend; only the window is shaped, and the arrays returned are the
    window's days only. ``expect``: the expected trend of the shape instead."""
    k = h.options["days"]
    m = logins.size
    w = _trend_weights(k)
    anchor = np.where(k - 1 - silent >= 0, w[np.clip(k - 1 - silent, 0, k - 1)], 0.0)
    cols = slice(0, k) if known is None else slice(k - WINDOW, k)
    w, i = w[cols], np.arange(k, dtype=float)[cols]
    last = k - 1 - silent                                  # index of the last login
    start = np.maximum(first, k - WINDOW)                  # the first live day of the window
    in_window = (i[None, :] >= start[:, None]) & (i[None, :] <= last[:, None])
    pre_end = np.minimum(last - 1, k - WINDOW - 1)
    # (the days before the window: none among the window's days when they are known)
    in_pre = None if known is not None else (i[None, :] >= first[:, None]) & (i[None, :] <= pre_end[:, None])
    n_window = in_window.sum(axis=1)
    if cal is not None:            # logins fall on days by their weight, each span's mean weight 1: the
        in_window = in_window * cal    # spans' levels (and the trend they make) stay the inputs'
        if in_pre is not None:
            in_pre = in_pre * (cal / np.maximum((in_pre * cal).sum(axis=1) / np.maximum(in_pre.sum(axis=1), 1),
                                                1e-12)[:, None])
    center = np.where(n_window > 0, (start + last) / 2, (first + np.maximum(pre_end, first)) / 2)
    spread = np.maximum(logins - 1, 0)                     # logins besides the last one
    level = np.where(logins > 0, logins, h.options["dormant_logins"]) / WINDOW
    dt = i[None, :] - center[:, None]
    wa = in_window * w
    share = spread / np.maximum(n_window, 1)
    gain = share * (wa @ i - center * wa.sum(axis=1))
    if in_pre is not None:
        wp = in_pre * w
        gain = gain + level * (wp @ i - center * wp.sum(axis=1))
    gain = np.where(np.abs(gain) > 1e-12, gain, np.inf)    # no logins to shape: slope is what it is
    beta = np.zeros(m)

    def expected(shape):                                   # the expected trend of a shape
        sa = shape * in_window
        before = level * ((shape * in_pre) @ w) if known is None else known
        return anchor + spread * (sa @ w) / np.maximum(sa.sum(axis=1), 1e-12) + before
    for _ in range(1 + REFINE):                            # expected slope is linear in beta until the floor
        beta = np.clip(beta + (trend - expected(_rate_shape(beta, dt))) / gain, -MAX_RATE_SLOPE, MAX_RATE_SLOPE)
    shape = _rate_shape(beta, dt)
    if expect:
        return expected(shape)
    return shape, in_window, in_pre, spread, level, last


def _rate_shape(beta: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """max(1 + beta dt, 0): the relative daily rate, in place (np.clip's is twice as slow)."""
    shape = beta[:, None] * dt
    shape += 1
    return np.maximum(shape, 0, out=shape)


def _logins(h, inp, rng, first, cal=None):
    k = h.options["days"]
    logins = np.asarray(inp["logins"], dtype=np.int64)
    silent = np.asarray(inp["last_login"], dtype=np.int64)
    before_joining = (silent < k) & (k - 1 - silent < first)      # (beyond the grid: the realized check says so)
    if before_joining.any():
        bad = int(np.argmax(before_joining))
        raise ValueError(f"a last login {silent[bad]} days before the observation end is before the partner "
                         f"joined ({k - first[bad]} live days): days since the last login must be below the "
                         f"live days")
    shape, in_window, in_pre, spread, level, last = _login_shape(h, logins, silent, np.asarray(inp["trend"], float),
                                                                 first, cal=cal)
    m = logins.size
    x = np.zeros((m, k), dtype=np.int64)
    u = rng("logins-window").random((m, int(spread.max(initial=0))))
    x[:, k - WINDOW:] = D.allocate(spread, (shape * in_window)[:, k - WINDOW:], u)
    before = slice(0, k - WINDOW)
    x[:, before] = D.poisson((in_pre * shape * level[:, None])[:, before], rng("logins-before").random((m, k - WINDOW)))
    rows = np.flatnonzero(last >= 0)
    x[rows, last[rows]] += 1
    return x


PER_LOGIN = (("dashboard_clicks", "clicks_per_login", 4.0), ("features_used", "features_per_login", 4.0),
             ("minutes_spent", "minutes_per_login", 2.0))


def _totals(logins, engagement, volume, quality, days, options, rng):
    """Totals over a span of days. Per-login metrics: the logins times the partner's
    engagement-scaled rate times a gamma factor of mean 1 for the span (minutes in
    tenths). Traffic: Poisson sessions, binomial bounces, gamma seconds per engaged
    session. Every draw's stream use depends on inputs that do not follow the churn label
    (the factors' shapes are constants; the logins only scale them)."""
    e = np.asarray(engagement, dtype=float)
    m = e.size
    out = {}
    for name, rate, shape in PER_LOGIN:
        mean = logins * options[rate] * e * rng(name).standard_gamma(shape, m) / shape
        scale = 10 if name == "minutes_spent" else 1
        out[name] = D.stochastic_round(mean * scale, rng(f"{name}-round").random(m))
    q = np.sqrt(np.clip(np.asarray(quality, dtype=float), 0, 1))
    sessions = rng("sessions").poisson(np.asarray(volume, float) * days)
    bounces = rng("bounces").binomial(sessions, 1 - q)
    seconds = rng("seconds").gamma(2.0 * (sessions - bounces), options["session_seconds"] * q / 2.0)
    out.update(sessions=sessions, bounces=bounces, session_seconds=np.round(seconds).astype(np.int64))
    return out


def generate(h, inp, rng, full: bool):
    """Logins for every live day, and the other columns as totals over the live days of
    the last 30 (and of the days before, when the table is written): :func:`frame` splits
    them into live days, after any golden record has moved its logins."""
    k = h.options["days"]
    first = first_live(k, inp[LIVE])
    cal = day_weights(h, inp, k)
    x = _logins(h, inp, rng, first, cal)
    live_window = k - np.maximum(first, k - WINDOW)              # live days in each span
    live_before = np.clip(k - WINDOW - first, 0, None)
    args = (inp["engagement"], inp["traffic"], inp["traffic_quality"])
    b = {"logins": x, "first": first, "downloads": np.asarray(inp["downloads"], dtype=np.int64),
         "window": _totals(x[:, k - WINDOW:].sum(axis=1), *args, live_window, h.options,
                           lambda name: rng(f"{name}-window"))}
    if full:
        b["before"] = _totals(x[:, :k - WINDOW].sum(axis=1), *args, live_before, h.options,
                              lambda name: rng(f"{name}-before"))
        b["before"]["asset_downloads"] = D.poisson(
            b["downloads"] * live_before / WINDOW * (x[:, :k - WINDOW].sum(axis=1) > 0),
            rng("downloads-before").random(x.shape[0]))
        b["split"] = rng("split").random((x.shape[0], 8))          # one systematic offset per column
        # day-to-day traffic variation, nothing before joining
        b["day_noise"] = rng("day-noise").standard_gamma(5.0, x.shape) * live_grid(k, first)
        if cal is not None:                                      # sessions follow the calendar too
            b["day_noise"] *= cal
    return b


def expected_trend(h, inp) -> np.ndarray:
    """Each partner's expected login trend from its inputs (:func:`generate`'s shape, before
    any draw): the intended ``trend`` where its logins and live days allow it, as close as
    they allow otherwise (a partner with 3 logins in 30 days cannot climb by 0.14 a day)."""
    k = h.options["days"]
    first = first_live(k, inp[LIVE])
    return _login_shape(h, np.asarray(inp["logins"], dtype=np.int64), np.asarray(inp["last_login"], dtype=np.int64),
                        np.asarray(inp["trend"], float), first, cal=day_weights(h, inp, k), expect=True)


def settle(h, inp, carried: bool):
    """A horizon date's inputs made feasible, as one snapshot's always are (the moved
    columns each walk on their own): nothing before joining (live days below 1: none yet);
    a last login on a live day, inside the window when it has logins (the window's count
    includes it); with none in the window, the last login is the history's own
    (``carried``: the days before the window are history already) or, at the first date,
    the drawn day when it lies before the window on a live day."""
    k = h.options["days"]
    live = np.asarray(inp[LIVE], dtype=np.int64)
    logins = np.where(live >= 1, np.asarray(inp["logins"], dtype=np.int64), 0)
    silent = np.asarray(inp["last_login"], dtype=np.int64)
    silent = np.where(logins > 0, np.minimum(silent, np.minimum(WINDOW, live) - 1),
                      np.where(~carried & (silent >= WINDOW) & (silent < np.minimum(k, live)), silent, k))
    return {**inp, LIVE: np.maximum(live, 0), "logins": logins, "last_login": silent,
            "downloads": np.where(logins > 0, np.asarray(inp["downloads"], dtype=np.int64), 0)}


def start(h, inp, rng, full: bool, periods: int, exact: bool = False, lag: int = 0, rows: int = 0):
    """:func:`generate` at a horizon's first date, its logins held in an array with room
    for ``periods`` more windows and ``rows`` partners (the first ones given, the others
    joining later): each later date's block is a view of it (:func:`advance`), so a golden
    record's logins moved at one date are the earlier date's too."""
    b = generate(h, settle(h, inp, False), rng, full)
    m, k = b["logins"].shape
    history = np.zeros((max(rows, m), k + periods * WINDOW), dtype=np.int32)   # (half the memory to sweep)
    history[:m, :k] = b["logins"]
    return {**b, "logins": history[:m, :k], "history": history, "offset": 0}


def advance(h, b, inp, rng, full: bool, exact: bool = False, lag: int = 0):
    """The block of the grid ending one window (30 days) later: the window's logins
    generated from the inputs as of its last day (:func:`settle`d), the logins before it
    being the history's (their part of the trend known, the window shaped for the rest),
    and its totals as :func:`generate` draws them. ``exact`` (at the feature date, a
    boolean per row; False elsewhere): those rows' silence of 30 days or more is realized
    too, by the window before, whose logins after the drawn last login are taken back and
    which gets a login on that day if it had none."""
    exact = np.broadcast_to(np.asarray(exact, dtype=bool), (np.asarray(inp["logins"]).size,))
    inp = settle(h, inp, ~exact)
    k = h.options["days"]
    history, offset = b["history"], b["offset"] + WINDOW
    m = inp["logins"].size                      # (the partners joined by this date: the first ones)
    x = history[:m, offset:offset + k]
    first = first_live(k, inp[LIVE])
    known = x[:, :k - WINDOW] @ _trend_weights(k)[:k - WINDOW]
    cal = day_weights(h, inp, WINDOW)
    shape, in_window, _, spread, _, last = _login_shape(h, inp["logins"], inp["last_login"],
                                                        np.asarray(inp["trend"], float), first, known, cal)
    u = rng("logins-window").random((m, int(spread.max(initial=0))))
    x[:, k - WINDOW:] = D.allocate(spread, shape * in_window, u)          # (the window's days)
    rows = np.flatnonzero(last >= k - WINDOW)
    x[rows, last[rows]] += 1
    if exact.any():                             # the last login before the window, and none after it
        rows = np.flatnonzero(exact & (last >= 0) & (last < k - WINDOW))
        after = np.arange(k - WINDOW)[None, :] > last[rows, None]
        x[rows, :k - WINDOW] *= ~after
        x[rows, last[rows]] = np.maximum(x[rows, last[rows]], 1)
    live_window = k - np.maximum(first, k - WINDOW)
    out = {"logins": x, "first": first, "downloads": inp["downloads"], "history": history, "offset": offset,
           "window": _totals(x[:, k - WINDOW:].sum(axis=1), inp["engagement"], inp["traffic"], inp["traffic_quality"],
                             live_window, h.options, lambda name: rng(f"{name}-window"))}
    if full:
        out["split"] = rng("split").random((m, 8))
        noise = np.zeros((m, k))
        noise[:, k - WINDOW:] = rng("day-noise").standard_gamma(5.0, (m, WINDOW)) * live_grid(k, first)[:, k - WINDOW:]
        if cal is not None:
            noise[:, k - WINDOW:] *= cal
        out["day_noise"] = noise
    return out


def reduce(h, b):
    w = b["window"]
    return {
        "logins_30d": b["logins"][:, -WINDOW:].sum(axis=1),
        "login_trend": b["logins"] @ _trend_weights(b["logins"].shape[1]) + 0.0,   # R.rolling_slope, 8x faster (+0: no -0)
        "days_since_login": _since_login(b["logins"], np.asarray(b["first"])),
        "clicks_30d": w["dashboard_clicks"],
        "minutes_30d": w["minutes_spent"] / 10,
        "features_used_30d": w["features_used"],
        "downloads_30d": b["downloads"],
        "sessions_30d": w["sessions"],
        "bounces_30d": w["bounces"],
        "session_seconds_30d": w["session_seconds"],
    }


def _since_login(logins: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Days since the last login; with none in the grid (a faulty table can hide them all),
    the days since the partner joined (its signup the last interaction it had), or the
    grid's length for one that joined before it."""
    since = R.periods_since_last(logins)
    return np.where(first > 0, np.minimum(since, logins.shape[1] - 1 - first), since)


WINDOW_TOTALS = (("dashboard_clicks", "clicks_30d"), ("minutes_spent", "minutes_30d"),
                 ("features_used", "features_used_30d"), ("asset_downloads", "downloads_30d"),
                 ("sessions", "sessions_30d"), ("bounces", "bounces_30d"), ("session_seconds", "session_seconds_30d"))


def observe(h, b, copies):
    """The aggregates of the rows a faulty warehouse holds, each live day's row counted
    ``copies`` times: the logins' from the counted grid, the window's totals from the days
    :func:`frame` writes, re-added only for the partners whose window rows are not each
    there once (the others' are the clean totals)."""
    x = b["logins"]
    out = reduce(h, {**b, "logins": x * copies})
    hit = np.flatnonzero((copies[:, -WINDOW:] != 1).any(axis=1))
    if hit.size:
        days = slice(x.shape[1] - WINDOW, x.shape[1])
        sub = {"window": {c: v[hit] for c, v in b["window"].items()}, "downloads": np.asarray(b["downloads"])[hit]}
        cols = _days(sub, "window", days, x[hit, days], b["split"][hit], b["day_noise"][hit, days])
        c = copies[hit, days]
        for col, agg in WINDOW_TOTALS:
            out[agg] = out[agg].astype(np.result_type(out[agg], cols[col]), copy=True)
            out[agg][hit] = (cols[col] * c).sum(axis=1)
    return out


def cells(h, b, last: int | None = None):
    """The cells :func:`frame` writes rows for: the live days (of the window only, ``last``)."""
    live = live_grid(b["logins"].shape[1], b["first"])
    if last is not None:
        live[:, :-last] = False
    return live


def _days(b, part, days, x, split, noise):
    """One span's totals split into its days: per-login metrics and downloads over login
    days (by logins), sessions by day-to-day noise, bounces and seconds by sessions."""
    t = dict(b[part])
    if part == "window":
        t["asset_downloads"] = b["downloads"]
    cols = {name: D.split(t[name], x, split[:, i]) for i, name in
            enumerate(["dashboard_clicks", "features_used", "minutes_spent", "asset_downloads"])}
    cols["minutes_spent"] = cols["minutes_spent"] / 10
    cols["sessions"] = D.split(t["sessions"], noise, split[:, 4])
    cols["bounces"] = D.split(t["bounces"], cols["sessions"], split[:, 5])
    cols["session_seconds"] = D.split(t["session_seconds"], cols["sessions"] - cols["bounces"], split[:, 6])
    return cols


COLUMNS = ("logins", "dashboard_clicks", "minutes_spent", "features_used", "asset_downloads",
           "sessions", "bounces", "session_seconds")


def frame(h, b, codes, key, last: int | None = None):
    """One row per partner per live day (``last``: of the window only, a horizon's later
    period); ``activity_date`` in days before the end."""
    x = b["logins"]
    m, k = x.shape
    if last not in (None, WINDOW):
        raise ValueError(f"a daily_activity block frames its whole grid or its {WINDOW}-day window, not {last} days")
    lo = 0 if last is None else k - WINDOW
    spans = [_days(b, part, cols, x[:, cols], b["split"], b["day_noise"][:, cols])
             for part, cols in (("before", slice(0, k - WINDOW)), ("window", slice(k - WINDOW, k))) if cols.stop > lo]
    live = live_grid(k, b["first"])[:, lo:]
    out = {key.column: partner_column(codes, key.dtype, live.sum(axis=1)),
           "activity_date": days_to_end(k, m)[:, lo:][live], "logins": x[:, lo:][live].astype(np.int64)}
    out.update({c: np.concatenate([s[c] for s in spans], axis=1)[live] for c in COLUMNS if c != "logins"})
    return pd.DataFrame(out)


def schema(h, spec):
    k = h.options["days"]
    counts = {c: pa.Column("int64", pa.Check.ge(0)) for c in COLUMNS if c != "minutes_spent"}
    return pa.DataFrameSchema({
        spec.key: pa.Column("category"),
        "activity_date": pa.Column("datetime64[us]", pa.Check.in_range(lower_date(spec, k), upper_date(spec))),
        **{c: counts.get(c, pa.Column("float64", pa.Check.ge(0))) for c in COLUMNS},
    }, strict=True, ordered=True, name=h.table, checks=[
        pa.Check(lambda df: df["bounces"] <= df["sessions"], name="bounces <= sessions"),
        pa.Check(lambda df: (df["logins"] > 0) | ((df["dashboard_clicks"] == 0) & (df["asset_downloads"] == 0)),
                 name="dashboard use and downloads only on login days"),
    ])


def realize_trend(h, b, row, target, decimals):
    """Move this partner's logins (window days after its last login stay empty, days
    before it joined too, the last login stays, the 30-day total stays) until the rounded
    trend equals ``target``."""
    x = b["logins"][row]
    k = x.size
    first = int(b["first"][row])
    w = _trend_weights(k)
    last = int(np.flatnonzero(x)[-1])
    tol = 0.5 * 10.0 ** -decimals
    window = np.arange(max(k - WINDOW, first), last + 1)
    before = np.arange(first, min(last, k - WINDOW))
    for _ in range(10_000):
        gap = target - x @ w
        if abs(gap) < tol * 0.999:
            return
        moves = []                                          # (change of the slope, apply)
        for i in window:                                    # move one login i -> j inside the window
            if x[i] > (1 if i == last else 0):
                for j in window:
                    if j != i:
                        moves.append((w[j] - w[i], ("move", i, j)))
        for i in before:                                    # add or remove one login before the window
            moves.append((w[i], ("add", i, i)))
            if x[i] > 0:
                moves.append((-w[i], ("remove", i, i)))
        best = min(moves, key=lambda mv: abs(gap - mv[0]))
        steps = [best[1]]
        if abs(gap - best[0]) >= abs(gap) or abs(gap) < 4 * tol:
            # near the target single steps overshoot: the best pair of steps (one
            # partner, a few thousand pairs), so the rounded trend can land exactly
            change = np.array([mv[0] for mv in moves])
            total = change[:, None] + change[None, :]
            a, c = np.unravel_index(np.argmin(np.abs(gap - total)), total.shape)
            if abs(gap - total[a, c]) >= min(abs(gap), abs(gap - best[0])):
                if abs(gap - best[0]) >= abs(gap):
                    break
            else:
                steps = [moves[a][1], moves[c][1]]
        for op, i, j in steps:
            if op == "move" and x[i] > (1 if i == last else 0):
                x[i] -= 1
                x[j] += 1
            elif op == "add":
                x[i] += 1
            elif op == "remove" and x[i] > 0:
                x[i] -= 1
    raise ValueError(f"cannot reach a login trend of {target} from {int(x[k - WINDOW:].sum())} logins in 30 "
                     f"days, the last {k - 1 - last} days ago, {k - first} live days; a steeper trend needs "
                     f"more logins, and a rising one recent logins (pin login_count_30d and "
                     f"days_since_last_interaction)")


KIND = Kind(
    name="daily_activity",
    inputs={
        "logins": "logins in the last 30 days (realized exactly)",
        "last_login": "days since the last login (realized exactly; 0 = the observation end; below the live days)",
        "downloads": "asset downloads in the last 30 days, on login days (realized exactly)",
        "trend": "intended slope of the 30-day login count over the last 30 days, per day",
        "engagement": "dashboard depth per login, 0-1",
        "traffic": "mean traffic sessions per day",
        "traffic_quality": "traffic quality, 0-1",
    },
    options={"days": ("int", 60, 2 * WINDOW - 1), "dormant_logins": ("number", 4, 0),
             "clicks_per_login": ("number", 16, 0), "minutes_per_login": ("number", 24, 0),
             "features_per_login": ("number", 3, 0), "session_seconds": ("number", 180, 1)},
    aggregates={
        "logins_30d": "logins in the last 30 days",
        "login_trend": "least-squares slope of the 30-day login count over the last 30 days",
        "days_since_login": "days since the last day with a login",
        "clicks_30d": "dashboard clicks, last 30 days", "minutes_30d": "dashboard minutes, last 30 days",
        "features_used_30d": "dashboard features used, last 30 days",
        "downloads_30d": "asset downloads, last 30 days", "sessions_30d": "traffic sessions, last 30 days",
        "bounces_30d": "bounced sessions, last 30 days",
        "session_seconds_30d": "seconds of engaged sessions, last 30 days",
    },
    generate=generate, reduce=reduce, frame=frame, schema=schema,
    span=lambda h: h.options["days"], dates=("activity_date",),
    measures={"trend": ("login_trend", 2 * WINDOW - 1)},      # the trend reads 59 days
    expect={"trend": expected_trend},
    realize={"login_trend": realize_trend},
    forward=Forward(start, advance, WINDOW, rewrites=True, inexact=frozenset({"days_since_login"})),
    panel=Panel("logins", "activity_date", 30, "30-day login count, last 30 days", "logins"),
    calendar=True,
    faulty=Faulty(observe, cells),
)
