"""The calendar (conf/calendar/, README "A calendar"): a week's rhythm and each region's
public holidays in the histories that follow it, totals kept exact, declared beside
realized in stats.json, and refused clearly when it is declared wrong."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import Run, refusal, run_cli
from simulator.histories import calendar
from simulator.load import load_spec


def _weekday_means(daily: pd.DataFrame) -> np.ndarray:
    """Mean logins per written partner-day, Monday first."""
    day = daily["activity_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    weekday = (day + 3) % 7
    return np.bincount(weekday, daily["logins"].to_numpy(float), 7) / np.bincount(weekday, minlength=7)


def test_the_default_week_has_a_rhythm_and_stats_json_shows_it(default_run):
    """The busiest weekday's mean logins at least 1.3x the quietest's (issue: Realism, 1),
    recomputed from activity_daily, and stats.json's realized profile is that recomputation
    over the partners observed to the feature date (the few who left before it carry its
    calendar on other days).
    (Each weekday's mean is over about 80,000 partner-days of about 0.5 logins: its standard
    error is under 0.5%, so 1.3 against a realized 1.6 is far beyond 4 SE.)"""
    daily = default_run.parquet("activity_daily")
    cohort = set(default_run.parquet("partners_engineered")["partner_id"])   # observed to the feature date
    means = _weekday_means(daily[daily["partner_id"].astype(str).isin(cohort)])
    assert means.max() / means.min() >= 1.3
    assert _weekday_means(daily).max() / _weekday_means(daily).min() >= 1.3           # everyone's too
    assert int(np.argmax(means)) in (0, 1, 2) and int(np.argmin(means)) in (5, 6)   # a working week
    found = json.loads((default_run.dir / "stats.json").read_text())["realized"]["calendar"]["daily"]
    rel = means / means.mean()
    for name, r in zip(calendar.WEEKDAYS, rel):
        assert found["weekdays"][name]["realized"] == pytest.approx(r, abs=1e-4)
    assert found["busiest_to_quietest"]["realized"] == pytest.approx(rel.max() / rel.min(), abs=1e-4)
    declared = np.array([found["weekdays"][n]["declared"] for n in calendar.WEEKDAYS])
    assert declared.mean() == pytest.approx(1.0, abs=1e-3)           # normalized, as documented


def test_commissions_follow_the_week_too(default_run):
    """A month's cents fall on days by weight: weekends earn less per live day than
    mid-week (about 130,000 partner-days per weekday: a difference of 30% is far beyond
    its sampling error)."""
    c = default_run.parquet("commissions_daily")
    day = c["commission_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    weekday = (day + 3) % 7
    mean = np.bincount(weekday, c["amount"].to_numpy(float), 7) / np.bincount(weekday, minlength=7)
    assert mean[[0, 1, 2]].min() > 1.3 * mean[[5, 6]].max()


@pytest.fixture(scope="module")
def horizon(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("calendar_horizon")
    run_cli("experiment=horizon_histories", "n_partners=3000", "db=none", "output.report=false", out_dir=out)
    return Run(out)


def test_uk_partners_rest_on_christmas_day(horizon):
    """In a horizon every day is dated: UK partners' mean logins on 25 December 2025 are
    below 0.8x the mean of the same weekday one and two weeks around it that are not
    holidays (issue: Realism, 1). (About 400 UK partners a day, about 0.5 logins each:
    the standard error of a day's mean is about 0.04; the declared holiday weight of 0.4
    puts the ratio near 0.4, more than 4 SE below 0.8.)"""
    daily = horizon.parquet("activity_daily")
    partners = horizon.parquet("partners")[["partner_id", "region"]]
    daily = daily.assign(partner_id=daily["partner_id"].astype(str)).merge(partners, on="partner_id")
    uk = daily[daily["region"] == "UK"].groupby("activity_date")["logins"].mean()
    xmas = pd.Timestamp("2025-12-25")
    around = [xmas + pd.Timedelta(days=d) for d in (-14, -7, 7, 14)]
    # (1 January 2026 is a holiday itself, and as_of; 8 January is after the horizon)
    around = [d for d in around if d in uk.index and d.strftime("%m-%d") not in ("01-01",)]
    assert len(around) >= 2
    assert uk[xmas] < 0.8 * uk[around].mean()


def test_no_calendar_leaves_every_day_alike(tmp_path):
    """calendar=none: no weekday stands out, and stats.json has no calendar. Without one the
    only weekday structure is the observation end's, the same Friday for the cohort: a
    partner logs in at its rate up to its last login and not after, so the days nearest the
    end hold a little fewer (busiest to quietest 1.053 at 3,000 partners, the quietest the
    Friday). Each weekday's mean is over about 24,000 partner-days (a ratio's standard error
    about 1.3%), so 1.10 is 4 SE above that and far below the calendar's 1.3 (required) and
    1.68 (realized)."""
    run_cli("calendar=none", "n_partners=3000", "db=none", "output.report=false", out_dir=tmp_path)
    means = _weekday_means(pd.read_parquet(tmp_path / "activity_daily.parquet"))
    assert means.max() / means.min() < 1.10
    assert "calendar" not in json.loads((tmp_path / "stats.json").read_text())["realized"]


def test_the_calendar_keeps_the_drawn_totals(compose):
    """The days move, the totals do not: the features a history realizes exactly (the
    30-day logins, the silence, the 3-month average) are the same with and without it."""
    from simulator import generate

    cols = ["login_count_30d", "days_since_last_interaction", "asset_download_count_30d", "avg_commission_3m"]
    a = generate(compose(["n_partners=1500"]))["partners"][cols]
    b = generate(compose(["n_partners=1500", "calendar=none"]))["partners"][cols]
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("override, fragment", [
    ("calendar.holidays.countries.UK=XX", "calendar.holidays.countries.UK: unknown country 'XX'"),
    ("calendar.weekdays.Sunday=0", "calendar.weekdays.Sunday: must be a finite weight > 0, got 0"),
    ("~calendar.weekdays.Friday", "calendar.weekdays: no weight for Friday"),
    ("+calendar.weekdays.Funday=1", "calendar.weekdays.Funday: unknown name"),
    ("calendar.holidays.factor=1.5", "calendar.holidays.factor: must be a number in (0, 1]"),
    ("calendar.holidays.by=tier_days", "calendar.holidays.by: must name a partners column of labels"),
    ("calendar.holidays.by=tenure_months", "'tenure_months' holds int values; it needs labels"),
    ("calendar.histories=[tickets]", "history 'tickets' (kind tickets) cannot follow a calendar"),
    ("calendar.histories=[dayly]", "calendar.histories: unknown history 'dayly'"),
    ("+calendar.season=1", "calendar.season: unknown key"),
    ("+calendar.holidays.countries.Brasil=BR", None),      # (Brazil has its entry: Brasil is another label)
    ("calendar.weekdays.Monday=1e309", "calendar.weekdays.Monday: must be a finite weight > 0, got inf"),
    ("calendar.holidays.by=payment_rail_type", "calendar.holidays.countries: none of payment_rail_type's labels "
                                               "(P2P, Crypto, Bank, Agent) has a country"),
    ("calendar.holidays.countries.Brazil=br", "unknown country 'br' for the holidays package; did you mean 'BR'?"),
])
def test_a_wrong_calendar_is_refused_with_its_path(compose, override, fragment):
    """At the path the user wrote: calendar.*, the group activity.calendar interpolates."""
    if fragment is None:                                    # allowed: a label this world does not have
        load_spec(compose([override]))
        return
    problems = refusal(compose, override)
    assert fragment in problems
    if fragment.startswith("calendar."):                    # the problem's own path, not activity.calendar.*
        assert re.search(rf"\d\. {re.escape(fragment)}", problems), problems


def test_a_misspelled_region_without_a_country_is_refused(compose):
    problems = refusal(compose, "~calendar.holidays.countries.Brazil", "+calendar.holidays.countries.Brasil=BR")
    assert "calendar.holidays.countries.Brasil: region has no label 'Brasil'" in problems
    assert "did you mean 'Brazil'?" in problems


def test_a_wrong_calendar_exits_2_without_a_traceback(tmp_path):
    proc = run_cli("calendar.holidays.countries.EU=EU", out_dir=tmp_path, check=False)
    assert proc.returncode == 2
    assert "calendar.holidays.countries.EU: unknown country 'EU'" in proc.stderr
    assert "Traceback" not in proc.stderr
