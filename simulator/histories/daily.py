"""Daily activity: logins, dashboard use, asset downloads and the partner's traffic.

Logins are built to three targets at once: the login count of the last 30 days (exact),
the days since the last login (exact: a login on that day, none after), and an intended
trend of the 30-day login count (in expectation). The trend is the least-squares slope of
the trailing 30-day count over the last 30 days (:func:`reduce.rolling_slope`), which is
linear in the daily counts; so the daily rate is given a linear shape whose *expected*
slope equals the target, solved in closed form per partner. Partners with very few logins
cannot realize a steep trend (the rate cannot go below zero); theirs is as close as the
shape allows.

Dashboard clicks, minutes and features used follow the logins, scaled by the partner's
engagement (0-1); downloads (exact 30-day total) happen on login days; traffic sessions,
bounces and session seconds follow the traffic volume and quality (0-1) so that
``(1 - bounce rate) * session seconds / reference`` is about the quality.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import Kind, partner_column
from . import reduce as R

WINDOW = 30          # the features' window: 30 days ending at as_of
REFINE = 1           # corrections of the closed-form shape for the zero floor
MAX_RATE_SLOPE = 0.1  # bound on the relative daily change of the login rate


def _login_shape(h, logins, silent, trend):
    """Per partner: the relative daily login rate over the history (k days), and where
    logins may fall (window days up to the last login, pre-window days before it)."""
    k = h.options["days"]
    m = logins.size
    w = R.rolling_slope_weights(k, WINDOW, WINDOW)
    i = np.arange(k, dtype=float)
    last = k - 1 - silent                                  # index of the last login
    in_window = (i >= k - WINDOW) & (i[None, :] <= last[:, None])
    pre_end = np.minimum(last - 1, k - WINDOW - 1)
    in_pre = i[None, :] <= pre_end[:, None]
    n_window = in_window.sum(axis=1)
    center = np.where(n_window > 0, (k - WINDOW + last) / 2, np.maximum(pre_end, 0) / 2)
    spread = np.maximum(logins - 1, 0)                     # logins besides the last one
    level = np.where(logins > 0, logins, h.options["dormant_logins"]) / WINDOW
    anchor = np.where(last >= 0, w[np.clip(last, 0, k - 1)], 0.0)
    dt = i[None, :] - center[:, None]
    wa, wp = in_window * w, in_pre * w
    share = spread / np.maximum(n_window, 1)
    gain = share * (wa @ i - center * wa.sum(axis=1)) + level * (wp @ i - center * wp.sum(axis=1))
    gain = np.where(np.abs(gain) > 1e-12, gain, np.inf)    # no logins to shape: slope is what it is
    beta = np.zeros(m)
    for _ in range(1 + REFINE):                            # expected slope is linear in beta until the floor
        shape = np.clip(1 + beta[:, None] * dt, 0, None)
        sa = shape * in_window
        expected = anchor + spread * (sa @ w) / np.maximum(sa.sum(axis=1), 1e-12) + level * ((shape * in_pre) @ w)
        beta = np.clip(beta + (trend - expected) / gain, -MAX_RATE_SLOPE, MAX_RATE_SLOPE)
    shape = np.clip(1 + beta[:, None] * dt, 0, None)
    return shape, in_window, in_pre, spread, level, last


def _logins(h, inp, rng):
    k = h.options["days"]
    logins = np.asarray(inp["logins"], dtype=np.int64)
    silent = np.asarray(inp["last_login"], dtype=np.int64)
    shape, in_window, in_pre, spread, level, last = _login_shape(h, logins, silent, np.asarray(inp["trend"], float))
    x = np.zeros((logins.size, k), dtype=np.int64)
    p = (shape * in_window)[:, k - WINDOW:]
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1), 1 / WINDOW)
    x[:, k - WINDOW:] = rng("logins-window").multinomial(spread, p)
    x += rng("logins-before").poisson(in_pre * shape * level[:, None])
    rows = np.flatnonzero(last >= 0)
    x[rows, last[rows]] += 1
    return x


def _per_login(x, engagement, options, rng):
    e = np.asarray(engagement, dtype=float)[:, None]
    return {
        "dashboard_clicks": rng("clicks").poisson(x * options["clicks_per_login"] * e),
        "minutes_spent": np.round(rng("minutes").gamma(2.0 * x, options["minutes_per_login"] * e / 2.0), 1),
        "features_used": rng("features").poisson(x * options["features_per_login"] * e),
    }


def _traffic(m, k, volume, quality, options, rng):
    q = np.sqrt(np.clip(np.asarray(quality, dtype=float), 0, 1))[:, None]
    sessions = rng("sessions").poisson(np.broadcast_to(np.asarray(volume, float)[:, None], (m, k)))
    bounces = rng("bounces").binomial(sessions, 1 - q)
    engaged = sessions - bounces
    seconds = np.round(rng("seconds").gamma(2.0 * engaged, options["session_seconds"] * q / 2.0))
    return {"sessions": sessions, "bounces": bounces, "session_seconds": seconds.astype(np.int64)}


def generate(h, inp, rng, full: bool):
    """Daily rows: the last 30 days always (the features read them); the days before
    only for the login trend, and their other columns only when the table is written."""
    k = h.options["days"]
    x = _logins(h, inp, rng)
    m = x.shape[0]
    cols = {"logins": x}
    windows = [("window", slice(k - WINDOW, k))] + ([("before", slice(0, k - WINDOW))] if full else [])
    parts = []
    for part, days in windows:
        sub = lambda name, part=part: rng(f"{name}-{part}")
        got = _per_login(x[:, days], inp["engagement"], h.options, sub)
        got.update(_traffic(m, days.stop - days.start, inp["traffic"], inp["traffic_quality"], h.options, sub))
        parts.append(got)
    downloads = np.asarray(inp["downloads"], dtype=np.int64)
    recent = x[:, k - WINDOW:].astype(float)
    total = recent.sum(axis=1, keepdims=True)
    p = np.where(total > 0, recent / np.where(total > 0, total, 1), 1 / WINDOW)
    got_downloads = rng("downloads").multinomial(downloads, p)
    for name in parts[0]:
        cols[name] = parts[0][name] if not full else np.concatenate([parts[1][name], parts[0][name]], axis=1)
    cols["asset_downloads"] = got_downloads if not full else np.concatenate(
        [np.zeros((m, k - WINDOW), dtype=np.int64), got_downloads], axis=1)
    return cols


def reduce(h, b):
    k = b["logins"].shape[1]
    last = {name: v[:, -WINDOW:].sum(axis=1) for name, v in b.items()}
    return {
        "logins_30d": last["logins"],
        "login_trend": R.rolling_slope(b["logins"], WINDOW, WINDOW),
        "days_since_login": R.periods_since_last(b["logins"]) if k else np.zeros(0),
        "clicks_30d": last["dashboard_clicks"],
        "minutes_30d": last["minutes_spent"],
        "features_used_30d": last["features_used"],
        "downloads_30d": last["asset_downloads"],
        "sessions_30d": last["sessions"],
        "bounces_30d": last["bounces"],
        "session_seconds_30d": last["session_seconds"],
    }


COLUMNS = ("logins", "dashboard_clicks", "minutes_spent", "features_used", "asset_downloads",
           "sessions", "bounces", "session_seconds")


def frame(h, b, codes, id_dtype, as_of):
    m, k = b["logins"].shape
    days = as_of - np.arange(k - 1, -1, -1).astype(np.int64) * np.timedelta64(1, "D")
    out = {"partner_id": partner_column(codes, id_dtype, k), "activity_date": np.tile(days, m)}
    out.update({c: b[c].ravel() for c in COLUMNS})
    return pd.DataFrame(out)


def schema(h, spec):
    k = h.options["days"]
    counts = {c: pa.Column("int64", pa.Check.ge(0)) for c in COLUMNS if c != "minutes_spent"}
    return pa.DataFrameSchema({
        "partner_id": pa.Column("category"),
        "activity_date": pa.Column("datetime64[us]", pa.Check.in_range(
            spec.as_of - np.timedelta64(k - 1, "D"), spec.as_of)),
        **{c: counts.get(c, pa.Column("float64", pa.Check.ge(0))) for c in COLUMNS},
    }, strict=True, ordered=True, name=h.table, checks=[
        pa.Check(lambda df: df["bounces"] <= df["sessions"], name="bounces <= sessions"),
        pa.Check(lambda df: (df["logins"] > 0) | ((df["dashboard_clicks"] == 0) & (df["asset_downloads"] == 0)),
                 name="dashboard use and downloads only on login days"),
    ])


def _realize_trend(h, b, row, target, decimals):
    """Move this partner's logins (window days after its last login stay empty, the last
    login stays, the 30-day total stays) until the rounded trend equals ``target``."""
    x = b["logins"][row]
    k = x.size
    w = R.rolling_slope_weights(k, WINDOW, WINDOW)
    last = int(np.flatnonzero(x)[-1])
    tol = 0.5 * 10.0 ** -decimals
    window = np.arange(k - WINDOW, last + 1)
    before = np.arange(0, min(last, k - WINDOW))
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
        if abs(gap - best[0]) >= abs(gap):
            break
        op, i, j = best[1]
        if op == "move":
            x[i] -= 1
            x[j] += 1
        else:
            x[i] += 1 if op == "add" else -1
    raise ValueError(f"cannot reach a login trend of {target} from this partner's logins")


def _fix_dependents(b, row):
    """Dashboard use and downloads only on login days after logins were moved."""
    x = b["logins"][row]
    k = x.size
    for name in ("dashboard_clicks", "minutes_spent", "features_used"):
        v = b[name][row]
        days = x[k - v.size:]                               # the block may hold only the window
        lost = (days == 0) & (v > 0)
        if lost.any():
            moved = v[lost].sum()
            v[lost] = 0
            v[np.flatnonzero(days)[-1]] += moved
    d = b["asset_downloads"][row]
    days = x[k - d.size:]
    lost = (days == 0) & (d > 0)
    if lost.any():
        moved = d[lost].sum()
        d[lost] = 0
        d[np.flatnonzero(days)[-1]] += moved


def realize_trend(h, b, row, target, decimals):
    _realize_trend(h, b, row, target, decimals)
    _fix_dependents(b, row)


KIND = Kind(
    name="daily_activity",
    doc=__doc__.splitlines()[0],
    inputs={
        "logins": "logins in the last 30 days (realized exactly)",
        "last_login": "days since the last login (realized exactly; 0 = today)",
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
    realize={"login_trend": realize_trend},
)
