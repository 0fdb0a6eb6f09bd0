"""Warehouse faults (issue "Realism", item 3): the model-ready tables lose a declared share of
a feature's values; history rows arrive late, twice or not at all, and the features are
computed from the rows a snapshot's date has; the truth stays clean, and a bad declaration
is refused with its config path."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import refusal, run_cli

GOLDEN = [f"P0000{i}" for i in range(1, 6)]              # the default world's golden records


def test_the_declared_share_is_lost_and_counted(default_run):
    """Each entry of faults.missing is a stats.json target: the share of partners_engineered's
    eligible rows (where holds on the true state, a value was there) that lost the value,
    within 4 standard errors of the declared share; realized.faults counts them."""
    stats = json.loads((default_run.dir / "stats.json").read_text())
    table = default_run.parquet("partners_engineered")
    partners = default_run.parquet("partners").set_index("partner_id").loc[table["partner_id"]]
    targets = {t["target"]: t for t in stats["targets"] if t["target"].startswith("faults.missing.")}
    assert set(targets) == {"faults.missing.dashboard_usage_score", "faults.missing.traffic_quality_score"}
    young = (partners["tenure_months"] < 6).to_numpy()
    for column, eligible, share in (("dashboard_usage_score", np.ones(len(table), dtype=bool), 0.02),
                                    ("traffic_quality_score", young, 0.1)):
        t = targets[f"faults.missing.{column}"]
        lost = table[column].isna().to_numpy()
        assert not lost[~eligible].any()                            # only where the condition holds
        assert t["n"] == eligible.sum() and t["declared"] == share
        assert t["realized"] == pytest.approx(lost[eligible].mean(), abs=1e-6)
        assert abs(lost[eligible].mean() - share) < 4 * np.sqrt(share * (1 - share) / eligible.sum())
        assert stats["realized"]["faults"]["missing"][column] == {
            "rows": int(eligible.sum()), "lost": int(lost.sum()),
            "where": None if column == "dashboard_usage_score" else "tenure_months < 6"}
    assert 0.005 <= table["dashboard_usage_score"].isna().mean() <= 0.05      # the modest level


FEATURE_DATE = np.datetime64("2025-10-03")       # the default as_of 2026-01-01 minus the 90-day label window


def _recomputed(activity: pd.DataFrame, ids: pd.Index, day: np.datetime64) -> pd.DataFrame:
    """The six daily features of ``ids`` on ``day`` as a pipeline computes them from the daily
    table: the rows arrived by that day (ingested_at), each counted as often as it is there."""
    rows = activity[(activity["ingested_at"] <= day) & (activity["activity_date"] <= day)
                    & (activity["activity_date"] > day - np.timedelta64(60, "D"))]
    r = ids.get_indexer(rows["partner_id"].astype(str))
    back = ((day - rows["activity_date"].to_numpy(dtype="datetime64[D]")) // np.timedelta64(1, "D")).astype(int)
    mine = r >= 0

    def grid(value: str) -> np.ndarray:                 # partners x 60 days, oldest first
        x = np.zeros((len(ids), 60))
        np.add.at(x, (r[mine], 59 - back[mine]), rows[value].to_numpy(dtype=float)[mine])
        return x
    logins = grid("logins")
    window = {c: grid(c)[:, 30:].sum(axis=1) for c in ("logins", "dashboard_clicks", "minutes_spent",
                                                       "features_used", "asset_downloads", "sessions", "bounces",
                                                       "session_seconds")}
    rolling = np.array([logins[:, d - 29:d + 1].sum(axis=1) for d in range(30, 60)]).T
    t = np.arange(30) - 14.5
    seen = (logins > 0).any(axis=1)
    per_login = np.maximum(window["logins"], 1)
    engaged = np.maximum(window["sessions"] - window["bounces"], 1)
    return pd.DataFrame({
        "login_count_30d": window["logins"],
        "login_trend_30d": rolling @ t / (t @ t),           # (unrounded: the table's are rounded to 3 places)
        "days_since_last_interaction": np.where(seen, np.argmax(logins[:, ::-1] > 0, axis=1), np.nan),
        "dashboard_usage_score": np.minimum(0.4 * window["dashboard_clicks"] / (16 * per_login)
                                            + 0.3 * window["minutes_spent"] / (24 * per_login)
                                            + 0.3 * window["features_used"] / (3 * per_login), 1),
        "asset_download_count_30d": window["asset_downloads"],
        "traffic_quality_score": (1 - window["bounces"] / np.maximum(window["sessions"], 1)) * np.minimum(
            window["session_seconds"] / engaged / 180, 1)}, index=ids)


def _agree(found: pd.DataFrame, table: pd.DataFrame, where: str) -> None:
    """Each recomputed feature equals the table's, rounded to 3 places (a value a fault lost:
    null there; a partner without a login in the grid: its days since the last one reach
    back further)."""
    for column in found.columns:
        seen = found[column].notna() & table[column].notna()
        gap = np.abs(found.loc[seen, column].to_numpy(float) - table.loc[seen, column].to_numpy(float))
        assert (gap <= 5e-4 + 1e-9).all(), (where, column, int((gap > 5e-4 + 1e-9).sum()))


def test_history_faults_are_declared_realized_and_read_as_a_pipeline_reads_them(default_run):
    """The default daily table: a share of rows late (ingested_at after the day) by a mean
    delay, a share written twice, and the Nigerian partners' outage days without rows, each a
    stats.json target met (or an invariant with 0 violations and a count). The model-ready
    features equal what a query over the rows arrived by the feature date computes, counting
    duplicates, while the partners table keeps the clean values (they differ for some rows)."""
    stats = json.loads((default_run.dir / "stats.json").read_text())
    targets = {t["target"]: t for t in stats["targets"] if t["target"].startswith(("faults.late", "faults.dupl"))}
    assert set(targets) == {"faults.late.daily.share", "faults.late.daily.days", "faults.duplicates.daily.share"}
    assert not any(t["miss"] for t in targets.values()) and min(t["n"] for t in targets.values()) > 10_000
    activity = default_run.parquet("activity_daily")
    partners = default_run.parquet("partners").set_index("partner_id")
    again = activity.duplicated(["partner_id", "activity_date"])
    distinct = activity[~again]
    late = distinct["ingested_at"] > distinct["activity_date"]
    assert targets["faults.late.daily.share"]["realized"] == pytest.approx(late.mean(), abs=1e-6)
    delay = (distinct.loc[late, "ingested_at"] - distinct.loc[late, "activity_date"]).dt.days
    assert targets["faults.late.daily.days"]["realized"] == pytest.approx(delay.mean(), abs=1e-6)
    assert (distinct["ingested_at"] >= distinct["activity_date"]).all() and delay.min() == 1
    assert targets["faults.duplicates.daily.share"]["realized"] == pytest.approx(again.sum() / len(distinct), abs=1e-6)
    before = activity.shift()[again]                       # a copy: right after its row, re-delivered later
    assert (activity[again].drop(columns="ingested_at").to_numpy() == before.drop(columns="ingested_at").to_numpy()).all()
    assert (activity.loc[again, "ingested_at"] > before["ingested_at"]).all() and not activity.duplicated().any()
    golden = partners.index.isin(GOLDEN)                   # (spared: tests below)
    nigeria = (partners["region"].eq("Nigeria") & ~golden).reindex(activity["partner_id"].astype(str)).to_numpy()
    down = (activity["activity_date"] >= "2025-09-15") & (activity["activity_date"] < "2025-09-18")
    assert down.any() and not (nigeria & down).any()
    outage = stats["realized"]["faults"]["outages"]["lagos_tracker"]
    nigeria_live = partners["region"].eq("Nigeria") & ~golden & (partners["created_at"] < "2025-09-18") & \
        (partners["churned_at"].isna() | (partners["churned_at"] > "2025-09-15"))       # a live day in the outage
    assert outage["partners"] == nigeria_live.sum() > 100
    assert outage["partners"] < outage["rows_not_recorded"] <= 3 * outage["partners"]
    assert {i["invariant"]: i["violations"] for i in stats["invariants"]}[
        "activity_daily: no row recorded in outage lagos_tracker (2025-09-15 up to 2025-09-18) but the golden "
        "records'"] == 0
    engineered = default_run.parquet("partners_engineered").set_index("partner_id")
    found = _recomputed(activity, engineered.index, FEATURE_DATE)
    _agree(found, engineered, "partners_engineered")
    assert found["days_since_last_interaction"].notna().mean() > 0.99
    # no login arrived in the 60 days (the outage took a young partner's only ones): the days
    # since it joined, its signup the last interaction (once 60, more than it had lived)
    unseen = found["days_since_last_interaction"].isna().to_numpy()
    joined = (FEATURE_DATE - partners.loc[engineered.index[unseen], "created_at"].to_numpy(dtype="datetime64[D]")) \
        // np.timedelta64(1, "D")
    assert (joined < 59).sum() >= 3
    assert (engineered.loc[unseen, "days_since_last_interaction"].to_numpy() == np.where(joined >= 59, 60, joined)).all()
    truth = partners.loc[engineered.index]
    assert (truth["login_count_30d"] != engineered["login_count_30d"]).mean() > 0.05
    assert (truth["days_since_last_interaction"] != engineered["days_since_last_interaction"]).any()


def test_the_golden_records_are_spared(default_run, compose):
    """The warehouse loses nothing of a golden record: the model-ready table shows every
    pinned feature as pinned (the demo's records are what they say), and P00005, a Nigerian
    partner in this world, has its daily rows through the outage that every other Nigerian
    partner's lack, each once and on time."""
    records = compose([]).golden.records
    engineered = default_run.parquet("partners_engineered").set_index("partner_id")
    pinned = [(pid, column, value) for pid, pins in records.items() for column, value in pins.items()
              if column in engineered.columns]
    assert len(pinned) >= 20 and "login_trend_30d" in {c for _, c, _ in pinned}
    for pid, column, value in pinned:
        assert engineered.loc[pid, column] == pytest.approx(value, abs=1e-9), (pid, column)
    partners = default_run.parquet("partners").set_index("partner_id")
    activity = default_run.parquet("activity_daily")
    mine = activity[activity["partner_id"].astype(str).isin(GOLDEN)]
    assert (mine["ingested_at"] == mine["activity_date"]).all()
    assert not mine.duplicated(["partner_id", "activity_date"]).any()
    nigerian = partners.loc[GOLDEN, "region"].eq("Nigeria")      # (P00003 and P00005 in this world)
    down = mine["activity_date"].between("2025-09-15", "2025-09-17")
    assert nigerian.any() and mine.loc[down, "partner_id"].astype(str).isin(nigerian[nigerian].index).any()


@pytest.mark.slow
def test_a_horizon_reads_at_each_snapshot_the_rows_arrived_by_it(tmp_path):
    """Run forward, each snapshot's features in features_panel are computed from the rows of
    the daily table arrived (ingested_at) by the snapshot date, at three snapshots; a row
    late at one snapshot is counted at the next; the table written at as_of holds no row
    arriving after it."""
    run_cli("n_partners=1500", "experiment=horizon_histories", "db=none", "output.report=false",
            out_dir=tmp_path)
    activity = pd.read_parquet(tmp_path / "activity_daily.parquet")
    panel = pd.read_parquet(tmp_path / "features_panel.parquet")
    assert activity["ingested_at"].max() <= np.datetime64("2026-01-01")
    days = sorted(panel["snapshot_date"].unique())
    assert len(days) == 12
    for day in (days[0], days[5], days[-1]):
        rows = panel[panel["snapshot_date"] == day].set_index("partner_id")
        _agree(_recomputed(activity, rows.index, np.datetime64(day, "D")), rows, str(day))
    day = np.datetime64(days[5], "D")
    pending = activity[(activity["activity_date"] <= day) & (activity["ingested_at"] > day)]
    assert len(pending) > 0                                # late at the snapshot, counted at the next one
    # a churner that returned is active again in the daily table from its return, never between
    partners = pd.read_parquet(tmp_path / "partners.parquet").set_index("partner_id")
    mine = partners.loc[activity["partner_id"].astype(str)]
    after_churn = (activity["activity_date"] >= mine["churned_at"].to_numpy()).to_numpy()
    returned = (activity["activity_date"] >= mine["reactivated_at"].to_numpy()).to_numpy()
    assert returned.sum() > 100 and not (after_churn & ~returned).any()
    assert panel.merge(partners[partners["reactivated_at"].notna()].reset_index(), on="partner_id")\
        .pipe(lambda m: (m["snapshot_date"] < m["churned_at"]).all())        # the panel follows the first churn


def test_reactivations_are_declared_and_realized(default_run):
    """faults.reactivations: the returned churners (reactivated_at after churned_at, by as_of)
    meet the share the declaration implies for them (a stats.json target, its expectation
    recomputed here from each churn's room before as_of); only churners return."""
    stats = json.loads((default_run.dir / "stats.json").read_text())
    partners = default_run.parquet("partners")
    gone, back = partners["churned_at"], partners["reactivated_at"]
    assert back.notna().sum() > 50 and (back[back.notna()] > gone[back.notna()]).all()
    assert (back[back.notna()] <= pd.Timestamp("2026-01-01")).all() and back[gone.isna()].isna().all()
    room = (pd.Timestamp("2026-01-01") - gone[gone.notna()]).dt.days.to_numpy()
    expected = 0.1 * (1 - (1 - 1 / 60) ** room)
    t = next(t for t in stats["targets"] if t["target"] == "faults.reactivations.share")
    assert t["declared"] == pytest.approx(expected.mean(), abs=1e-6) and not t["miss"]
    assert t["realized"] == pytest.approx(back.notna().sum() / gone.notna().sum(), abs=1e-6)
    assert stats["realized"]["faults"]["reactivations"]["returned"]["returned"] == back.notna().sum()


@pytest.mark.slow
def test_the_truth_stays_clean_and_none_gives_clean_tables(tmp_path):
    """A horizon with and without faults: the partners table (but the returns of
    faults.reactivations, a column of its own), the labels and every truth table are the same; the panel differs only in the cells a fault lost (null with faults,
    the true value without), each in a row its condition holds for at that snapshot, and
    the panel's last snapshot is partners_engineered."""
    common = ("n_partners=1500", "experiment=horizon", "db=none", "output.report=false")
    run_cli(*common, out_dir=tmp_path / "faulty")
    run_cli(*common, "faults=none", out_dir=tmp_path / "clean")
    for name in ("interventions", "decision_truth", "uplift_truth", "snapshot_truth"):
        assert (tmp_path / "faulty" / f"{name}.parquet").read_bytes() == \
            (tmp_path / "clean" / f"{name}.parquet").read_bytes(), name
    partners = pd.read_parquet(tmp_path / "faulty" / "partners.parquet")      # the same, and the returns
    pd.testing.assert_frame_equal(partners.drop(columns="reactivated_at"),
                                  pd.read_parquet(tmp_path / "clean" / "partners.parquet"))
    back = partners["reactivated_at"].notna()
    assert back.any() and (partners.loc[back, "reactivated_at"] > partners.loc[back, "churned_at"]).all()
    faulty, clean = (pd.read_parquet(tmp_path / d / "features_panel.parquet") for d in ("faulty", "clean"))
    assert faulty[["partner_id", "snapshot_date", "churn_label"]].equals(clean[["partner_id", "snapshot_date",
                                                                                "churn_label"]])
    for column in faulty.columns[2:]:
        lost = faulty[column].isna() & clean[column].notna()
        same = faulty[column].notna()
        assert faulty.loc[same, column].equals(clean.loc[same, column].astype(faulty[column].dtype)), column
        if column not in ("dashboard_usage_score", "traffic_quality_score"):
            assert not lost.any(), column
    lost = faulty["traffic_quality_score"].isna() & clean["traffic_quality_score"].notna()
    assert lost.any() and (clean.loc[lost, "tenure_months"] < 6).all()     # at that snapshot's tenure
    dashboard = faulty["dashboard_usage_score"].isna().groupby(faulty["snapshot_date"]).mean()
    assert len(dashboard) == 12 and dashboard.between(0.0, 0.06).all() and dashboard.mean() > 0.01
    last = faulty[faulty["snapshot_date"] == faulty["snapshot_date"].max()].drop(columns="snapshot_date")
    engineered = pd.read_parquet(tmp_path / "faulty" / "partners_engineered.parquet")
    pd.testing.assert_frame_equal(last.reset_index(drop=True), engineered, check_dtype=False)


@pytest.mark.parametrize("override, fragment", [
    ("+faults.missing.dashboard_usage={share: 0.1}",
     "faults.missing.dashboard_usage: 'dashboard_usage' is not a feature of a model-ready table"),
    ("+faults.lost={}", "faults.lost: unknown fault kind (known: missing, late, duplicates, outages, "
                        "reactivations)"),
    ("faults.reactivations.days=0", "faults.reactivations.days: must be the mean days from leaving to returning"),
    ("faults.reactivations.share=2", "faults.reactivations.share: must be a probability in [0, 1]"),
    ("faults.reactivations.column='drop table'", "faults.reactivations.column"),
    ("+faults.reactivations.when=1", "faults.reactivations.when: unknown key"),
    ("+faults.late.dayly={share: 0.1, days: 2}", "faults.late.dayly: 'dayly' is not a history of this world "
                                                 "(activity.histories: tickets, daily"),
    ("+faults.late.tickets={share: 0.1, days: 2}", "faults.late.tickets: history 'tickets' is a 'tickets' history, "
                                                   "which takes no faults yet (histories that can: daily; their "
                                                   "kinds: daily_activity)"),
    ("faults.reactivations.column=churned_at", "faults.reactivations.column: must name a new partners column, "
                                               "'churned_at' is already one (churn.churn_date.column)"),
    ("faults.reactivations.column=partner_id", "faults.reactivations.column: must name a new partners column, "
                                               "'partner_id' is already one (population.id.column writes it)"),
    ("faults.reactivations.column=region", "faults.reactivations.column: must name a new partners column, "
                                           "'region' is already one (population writes it)"),
    ("faults.late.daily.days=0.5", "faults.late.daily.days: must be the mean delay of a late row in days"),
    ("faults.duplicates.daily.share=-0.1", "faults.duplicates.daily.share: must be a probability in [0, 1]"),
    ("faults.outages.lagos_tracker.end=2025-09-01", "faults.outages.lagos_tracker.end: must be after its start"),
    ("faults.outages.lagos_tracker.start=2025-02-30", "faults.outages.lagos_tracker.start: must be a real calendar "
                                                      "date"),
    ("faults.outages.lagos_tracker.where='regio == 1'", "faults.outages.lagos_tracker.where: unknown column 'regio'"),
    ("+faults.outages.lagos_tracker.region=Nigeria", "faults.outages.lagos_tracker.region: unknown key"),
    ("faults.outages.lagos_tracker={history: daily, start: 2030-01-01, end: 2030-02-01}",
     "faults.outages.lagos_tracker.start: 2030-01-01 is on or after as_of 2026-01-01, where every history ends"),
    ("faults.missing.dashboard_usage_score.share=1.5", "faults.missing.dashboard_usage_score.share: must be a "
                                                       "probability in [0, 1], got 1.5"),
    ("faults.missing.traffic_quality_score.where='tenure < 1'",
     "faults.missing.traffic_quality_score.where: unknown column 'tenure'"),
    ("faults.missing.traffic_quality_score.where='tenure_months + 1'",
     "faults.missing.traffic_quality_score.where"),
    ("+faults.missing.dashboard_usage_score.rate=0.1", "faults.missing.dashboard_usage_score.rate: unknown key"),
])
def test_a_bad_fault_is_refused(compose, override, fragment):
    assert fragment in refusal(compose, override)
