"""History kinds: how a raw history is generated, reduced to aggregates, and written.

Python knows *kinds* of history (daily activity, commissions, weekly rates, payouts,
tickets); YAML (the ``activity`` group) declares each history's table, its per-partner
inputs (distributions or partners columns) and options, and the features computed from
its aggregates. Each kind module exposes a :class:`Kind`; add a kind by adding a module
and one entry to :data:`KINDS`.

One timeline. Every kind works on a *block* of partners as 2-D arrays (partners x
periods, oldest first) on a *relative* grid: the last period ends on each partner's own
observation end (the feature date, or the day before it left), so generation and
reduction need no dates and every feature reads only what happened up to that day. Each
partner also has ``live`` days (input ``live``, declared once as ``activity.live_days``):
the days from its joining to its observation end, both included. Periods before it
joined hold no events, are left out of the aggregates, and have no rows. Frames carry
each date as a small integer, days before the partner's observation end (``Kind.dates``;
negative: none); the stage turns them into dates once the churn stage has placed every
partner on the world's timeline. Generation and reduction stay whole-array operations,
and a 1M-partner world never holds all its daily rows at once unless the tables are
being written.
"""
from __future__ import annotations

from . import commissions, daily, payments, tickets, weekly
from .kind import (  # noqa: F401  (the package's names: kinds, helpers, the review's read-backs)
    Block, Rng, Faulty, Forward, Kind, Panel, PartnerKey, partner_column, LIVE, NO_DATE, EARLIEST_END_YEARS,
    first_live, live_grid, days_to_end, lower_date, upper_date, observation_end, history_end, live_days,
)

KINDS: dict[str, Kind] = {k.name: k for k in [
    daily.KIND, commissions.KIND, weekly.KIND, payments.KIND, tickets.KIND,
]}
