"""Review workflow: stats.json, report.html (in a real headless browser), diff, sweeps, experiments."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def stats(default_run):
    return json.loads((default_run.dir / "stats.json").read_text())


def _targets(stats):
    return {t["target"]: t for t in stats["targets"]}


def test_stats_cover_every_kind_of_declared_target(stats, default_run):
    t = _targets(stats)
    assert t["churn.target_rate"]["declared"] == 0.2
    cohort = default_run.csv("partners_engineered")
    assert abs(t["churn.target_rate"]["realized"] - cohort["churn_label"].mean()) < 1e-6
    assert t["churn.target_rate"]["n"] == len(cohort)
    assert {"population.columns.region.weights.Brazil", "population.columns.payment_rail_type[region=EU].weights.Bank",
            "population.columns.is_master_affiliate.p", "population.columns.tier.share.Platinum",
            "population.columns.avg_commission_3m.top20_share", "interventions.mix.call",
            "interventions.effects.call[0].effect", "interventions.effects.call[0].outcome",
            "network.fanout.mean", "network.without_subs", "network.independent"} <= set(t)
    assert 0.75 < t["population.columns.avg_commission_3m.top20_share"]["realized"] < 0.8
    assert set(stats["realized"]["scenario_shares"]) >= {"Healthy", "Trust_Erosion", "Active_Churn"}
    # the truth beside the realized: each effect-table row's churn rate vs its mean outcome_probability
    outcome = t["interventions.effects.email[3].outcome"]
    assert outcome["kind"] == "rate" and not outcome["miss"] and outcome["n"] > 1000
    assert stats["misses"] == sum(x["miss"] for x in stats["targets"])


def test_stats_carry_the_timeline_and_its_invariants(stats):
    assert stats["timeline"]["feature_date"] == "2025-10-03"
    assert stats["timeline"]["label_window"] == {"start": "2025-10-04", "end": "2026-01-01"}
    names = {i["invariant"] for i in stats["invariants"]}
    assert any("outcome Churned exactly when" in n for n in names)
    assert any("recomputed from network_relationships" in n for n in names)
    assert all(i["violations"] == 0 for i in stats["invariants"])


def test_every_column_is_summarized(stats, default_run):
    partners = default_run.csv("partners")
    summary = stats["columns"]["partners"]
    assert set(summary) == set(partners.columns) - {"partner_id"}
    assert summary["avg_commission_3m"]["max"] == partners["avg_commission_3m"].max()
    assert summary["subnetwork_avg_health_score"]["nulls"] == (~partners["is_master_affiliate"]).sum()
    assert set(stats["columns"]) == {"partners", "network_relationships", "interventions", "uplift_truth",
                                     "decision_truth", "snapshot_truth", "partners_engineered", "features_panel", "activity_daily", "commissions_daily",
                                     "conversions_weekly", "payouts", "support_tickets"}
    # a row per partner per live day of the 60-day grid (joining day to observation end), but
    # those the warehouse faults took out (an outage's) or wrote twice (stats.json counts both)
    joined = pd.to_datetime(partners["created_at"])
    left = pd.to_datetime(partners["churned_at"]) - pd.Timedelta(days=1)
    feature_date = pd.Timestamp(stats["timeline"]["feature_date"])
    live = (left.where(left < feature_date, feature_date) - joined).dt.days + 1
    faults = stats["realized"]["faults"]
    unrecorded = sum(o["rows_not_recorded"] for o in faults["outages"].values())
    assert unrecorded > 0 and faults["duplicates"]["daily"]["duplicated"] > 0
    assert stats["columns"]["activity_daily"]["logins"]["count"] == \
        np.minimum(live, 60).sum() - unrecorded + faults["duplicates"]["daily"]["duplicated"]


def test_a_new_declared_target_needs_no_code(compose):
    from simulator.review import stats as stats_mod
    from simulator.engine import simulate
    from simulator.load import load_spec

    spec = load_spec(compose(["n_partners=2000", "+population.columns.channel.dist=categorical",
                              "+population.columns.channel.weights={web: 0.7, app: 0.3}"]))
    t = _targets(stats_mod.build(spec, simulate(spec).tables))
    assert t["population.columns.channel.weights.web"]["declared"] == 0.7
    assert abs(t["population.columns.channel.weights.web"]["realized"] - 0.7) < 0.05


def test_the_default_world_meets_every_declared_target(stats):
    """Every target within 4 standard errors (or 0.005) at the default size and seed."""
    assert stats["misses"] == 0, [t for t in stats["targets"] if t["miss"]]


def test_the_miss_rule():
    from simulator.review.data import Target
    from simulator.review.stats import row

    _target = lambda *args: row(Target(*args))
    se = np.sqrt(0.2 * 0.8 / 10000)                         # 0.004
    assert _target("x", 0.2, 0.21, se, 10000, "rate")["miss"] is False      # 2.5 SE
    assert _target("x", 0.2, 0.22, se, 10000, "rate")["miss"] is True       # 5 SE
    assert _target("x", 0.2, 0.204, 0.0001, 10**8, "rate")["miss"] is False  # within 0.005


def test_stages_hand_the_review_plain_data_and_import_none_of_it():
    """No stage or history module imports report, stats, schemas or learnability, not even
    inside a function: of the review they import only its data records."""
    import ast

    banned = {"report", "stats", "schemas", "learnability"}
    modules = [*sorted((ROOT / "simulator" / "stages").glob("*.py")),
               *sorted((ROOT / "simulator" / "histories").glob("*.py"))]
    found = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = (node.module or "").split(".")
                names = {a.name for a in node.names}
                if banned & set(parts) or ("review" in parts and parts[-1] != "data") \
                        or (parts[-1] in ("", "simulator", "review") and names & (banned | {"review"})):
                    found.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(banned & set(a.name.split(".")) for a in node.names):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, found


def test_every_figure_kind_has_a_drawing_and_payloads_are_typed():
    from simulator.review.canvas import Html
    from simulator.review.data import FigureSpec
    from simulator.review.figures import DRAWINGS
    from simulator.review.report import panel

    assert set(FigureSpec.__subclasses__()) == set(DRAWINGS)
    assert panel("t", Html("<table></table>")) == "<section><h2>t</h2><table></table></section>"
    with pytest.raises(TypeError, match="not a panel payload"):
        panel("t", "<table></table>")              # a bare string is neither an Image nor Html


def test_report_is_self_contained(default_run):
    page = (default_run.dir / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert page.count("src='data:image/svg+xml;base64,") >= 6
    assert "Declared vs realized" in page and "Commission concentration" in page
    assert "Histories by churn class" in page          # the default world writes its histories



def test_report_shows_survival_by_road(default_run):
    assert "Survival over the label window by churn_path (Kaplan–Meier)" in (default_run.dir / "report.html").read_text()


def test_survival_at_the_window_end_is_one_minus_the_cohort_churn_rate(default_run, compose):
    """Nobody is censored before as_of, so Kaplan–Meier at the window's end is the cohort's
    empirical survival; the declared curve ends at 1 - target_rate."""
    from scipy import stats

    from simulator.load import load_spec
    from simulator.review.canvas import Image
    from simulator.review.charts import survival, survival_times

    world = load_spec(compose([]))                      # the default run's world
    partners = default_run.csv("partners")
    [spec] = world.stage("churn").figures(world, {world.table: partners})
    assert spec.by == "churn_path" and spec.period_days == 30    # the latent road: every partner has one
    window = (spec.end - spec.start) / np.timedelta64(1, "D")
    times = survival_times(spec, partners)
    cohort = default_run.csv("partners_engineered")     # one row per partner active at the feature date
    assert len(times) == len(cohort) and window == 90
    assert times.loc[times["churned"], "days"].between(1, window).all()
    days, churned = times["days"].to_numpy(), times["churned"].to_numpy()
    km = stats.ecdf(stats.CensoredData(uncensored=days[churned], right=days[~churned])).sf
    assert abs(km.evaluate(window) - (1 - cohort["churn_label"].mean())) < 1e-9
    assert abs((1 - spec.declared_hazard) ** (window / spec.period_days) - (1 - 0.2)) < 1e-12
    assert isinstance(survival(spec, partners), Image)


def test_survival_draws_without_scenarios_or_much_of_a_cohort(compose):
    from dataclasses import replace

    from simulator.load import load_spec
    from simulator.review.canvas import Image
    from simulator.review.charts import survival, survival_times
    from simulator.review.data import Survival

    world = load_spec(compose([]))
    alone = replace(world, stages=tuple(s for s in world.stages if "scenario" not in s.roles()))
    assert alone.stage("churn").figures(alone, {})[0].by is None      # no scenario role: the overall curve only
    partners = pd.DataFrame({"churned_at": pd.to_datetime([None, "2025-09-01", "2025-11-01", None, "2025-12-31"]),
                             "churn_scenario": ["Healthy", "Active_Churn", "Active_Churn", "Healthy", "Trust_Erosion"]})
    spec = Survival(heading="h", table="partners", start=np.datetime64("2025-10-03"), end=np.datetime64("2026-01-01"),
                    date="churned_at", by=None, period_days=30, declared_hazard=0.07, title="t")
    times = survival_times(spec, partners)                 # the September leaver is not in the cohort
    assert times["days"].tolist() == [90, 29, 90, 89] and times["churned"].tolist() == [False, True, False, True]
    assert isinstance(survival(spec, partners), Image)
    assert isinstance(survival(replace(spec, by="churn_scenario"), partners), Image)   # groups under 20: skipped
    assert survival(spec, partners.iloc[[1]]) is None      # nobody active at the feature date

def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_a_headless_browser(default_run, tmp_path):
    browser = _chromium()
    if browser is None:
        message = "chromium not found: install Debian's 'chromium' package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,4000",
                    f"--screenshot={shot}", (default_run.dir / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 4000 * 0.9
    # the plots rendered: matplotlib's blue (#1f77b4) and red (#d62728) fill many pixels
    blue = np.all(np.abs(img - np.array([0x1f, 0x77, 0xb4]) / 255) < 0.06, axis=-1).sum()
    red = np.all(np.abs(img - np.array([0xd6, 0x27, 0x28]) / 255) < 0.06, axis=-1).sum()
    assert blue > 2000 and red > 500


@pytest.mark.slow
def test_diff_reports_config_and_statistics(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_cli("n_partners=1500", "db=none", out_dir=a)
    run_cli("n_partners=1500", "db=none", "churn.target_rate=0.25", "region_mix=brazil_heavy", out_dir=b)
    md = subprocess.run([sys.executable, "-m", "simulator.diff", str(a), str(b)], capture_output=True,
                        text=True, cwd=ROOT, check=True).stdout
    assert "| `churn.target_rate` | 0.2 | 0.25 |" in md
    assert "| `region_mix.weights.Brazil` | 0.1667 | 0.45 |" in md
    assert "realized.churn_rate" in md
    js = json.loads(subprocess.run([sys.executable, "-m", "simulator.diff", str(a), str(b), "--format", "json"],
                                   capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    moved = {s["statistic"]: s for s in js["statistics"]}
    assert abs(moved["realized.churn_rate"]["new"] - 0.25) < 0.01
    assert moved["targets.population.columns.region.weights.Brazil"]["new"] > 0.4
    same = subprocess.run([sys.executable, "-m", "simulator.diff", str(a), str(a)], capture_output=True,
                          text=True, cwd=ROOT, check=True).stdout
    assert "No config change." in same and "(0 moved)" in same


def test_diff_refuses_a_directory_that_is_not_a_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "simulator.diff", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "is not a simulator run directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def _multirun(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "simulator", "-m", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_sweep_writes_one_summary_row_per_job(tmp_path, launcher):
    proc = _multirun("seed=1,2", "region_mix=uniform,brazil_heavy", "n_partners=1000", "db=none",
                     f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert len(summary) == 4 and (summary["status"] == "ok").all()
    assert set(summary["seed"]) == {1, 2}
    heavy = summary["overrides"].str.contains("brazil_heavy")
    assert summary.loc[heavy, "region.Brazil"].min() > summary.loc[~heavy, "region.Brazil"].max()
    assert (tmp_path / "sweep_summary.md").read_text().startswith("| job | overrides |")


@pytest.mark.slow
def test_every_experiment_composes_and_runs(tmp_path):
    proc = _multirun("experiment=glob(*)", "n_partners=1500", "db=none", "output.report=false",
                     f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "sweep_summary.csv").set_index("overrides")
    experiments = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
    assert len(summary) == len(experiments) >= 2
    crisis = summary.loc["experiment=payment_crisis n_partners=1500 db=none output.report=False"]
    eu = summary.loc["experiment=mature_eu n_partners=1500 db=none output.report=False"]
    # the crisis's shock raises the feature date's churn from the declared 0.20 to about 0.26
    # (its cohort: about 800 partners, SE 0.015); mature_eu declares 0.12 (SE 0.009)
    assert crisis["churn_rate"] > 0.2 and abs(eu["churn_rate"] - 0.12) < 0.02
    assert eu["region.EU"] > 0.4


@pytest.mark.slow
def test_progress_shows_on_a_terminal_and_not_in_pipes(tmp_path):
    piped = run_cli("n_partners=1000", "db=none", out_dir=tmp_path / "piped")
    assert "generate" not in piped.stderr and "partners/s" not in piped.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))   # a sized terminal
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={tmp_path / 'tty'}",
                             "n_partners=1000", "db=none"], stdout=subprocess.DEVNULL, stderr=follower,
                            cwd=ROOT, env=env)
    os.close(follower)
    seen = b""
    while True:                                # read while it runs: a closed pty drops its buffer
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                seen += os.read(leader, 65536)
            except OSError:
                break
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    assert b"review" in seen and b"partners/s" in seen   # the stages, and partners done with a rate


def test_diff_reads_runs_written_with_output_dir(tmp_path):
    out = tmp_path / "elsewhere"
    run_cli("n_partners=1000", "db=none", "output.report=false", f"output.dir={out}", out_dir=tmp_path / "hydra")
    proc = subprocess.run([sys.executable, "-m", "simulator.diff", str(out), str(out)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0 and "No config change." in proc.stdout


def test_a_declared_bound_shows_its_heap(default_run):
    """A sampled column's upper bound (avg_commission_3m's cap) is a declared target: the
    share of the declaration's reference draw at or above it, beside the share of the run
    sitting on it."""
    import json

    stats = json.loads((default_run.dir / "stats.json").read_text())
    row = next(t for t in stats["targets"] if t["target"] == "population.columns.avg_commission_3m.at_max")
    partners = default_run.csv("partners")
    assert row["realized"] == (partners["avg_commission_3m"] >= 50000).mean()
    assert abs(row["declared"] - 51 ** -1.16) < 0.002        # Lomax(1.16) x 1000 beyond 50,000: (1 + 50)^-1.16
    assert not row["miss"]


def test_the_reports_kaplan_meier_is_scipys(default_run, compose):
    """The report computes Kaplan–Meier itself (lifelines' import would cost a sixth of the
    run, and lifelines holds pandas below 3): on the default run's cohort, overall and per
    road, and on draws with ties and churn on day 0, the survival at every time equals
    scipy.stats.ecdf's Kaplan–Meier on the same censored data, to 1e-12."""
    from scipy import stats

    from simulator.load import load_spec
    from simulator.review.charts import kaplan_meier, survival_times

    world = load_spec(compose([]))                      # the default run's world
    partners = default_run.csv("partners")
    [spec] = world.stage("churn").figures(world, {world.table: partners})
    times = survival_times(spec, partners)
    rng = np.random.default_rng(1)
    cases = [times] + [g for _, g in times.groupby("group")] + [
        pd.DataFrame({"days": rng.integers(0, 30, 500).astype(float), "churned": rng.random(500) < 0.4})]
    assert len(cases) >= 7                               # all, six roads, the draws
    for case in cases:
        days, churned = case["days"].to_numpy(), case["churned"].to_numpy()
        at, surviving = kaplan_meier(days, churned)
        reference = stats.ecdf(stats.CensoredData(uncensored=days[churned], right=days[~churned])).sf
        # every distinct time, from 0 (or the first churn on day 0)
        assert np.array_equal(at, np.union1d(0.0, days)) and (surviving[0] < 1) == (churned & (days == 0)).any()
        assert np.abs(surviving - reference.evaluate(at)).max() < 1e-12
