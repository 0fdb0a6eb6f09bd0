"""Every option of every config group composes and validates; bad configs are refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from simulator.errors import ConfigError
from simulator.load import load_spec

CONF = Path(__file__).resolve().parents[1] / "conf"
OPTIONS = [(group.name, option.stem) for group in sorted(CONF.iterdir()) if group.is_dir()
           for option in sorted(group.glob("*.yaml"))]


NEEDS = {"shocks": ["timeline.snapshots=12"]}          # a shock needs a horizon (README: "Shocks")


@pytest.mark.parametrize("group, option", OPTIONS)
def test_every_option_composes_and_validates(compose, group, option):
    spec = load_spec(compose([f"{group}={option}", *(NEEDS.get(group, []) if option != "none" else [])]))
    assert spec.n == 10000 and spec.entity.columns
    assert bool(spec.shocks) == (option == "payment_crisis")


def test_brazil_heavy_declares_at_least_40_percent(compose):
    spec = load_spec(compose(["region_mix=brazil_heavy"]))
    region = next(c for c in spec.entity.columns if c.name == "region")
    assert dict(zip(region.domain.categories, region.weights))["Brazil"] >= 0.40


@pytest.mark.parametrize("override, fragment", [
    ("n_partners=abc", "n_partners: must be a whole number >= 1, got 'abc'"),
    ("n_partners=-5", "n_partners: must be a whole number >= 1, got -5"),
    ("n_partners=3", "golden.records.P00004: P00004 needs n_partners >= 4"),
    ("seed=-1", "seed: must be a whole number >= 0"),
    ("as_of=yesterday", "as_of: must be a date"),
    ("population.columns.tenure_drawn.dist=expo", "unknown sampler 'expo'"),
    ("population.columns.tenure_drawn.scale=-3", "population.columns.tenure_drawn.scale: must be a number > 0"),
    ("population.columns.is_master_affiliate.p=1.5", "is_master_affiliate.p: must be a probability in [0, 1]"),
    ("region_mix.weights.Brazil=0.5", "population.columns.region.weights: weights sum to 1.333"),
    ("population.columns.tier_proximity_score.expr='avg_comission_3m / 2'",
     "unknown column 'avg_comission_3m'"),
    ("churn.rules.silence.when='days.__class__'", "churn.rules.silence.when: 'days.__class__' (Attribute) is not allowed"),
    ("churn.target_rate=1.2", "churn.target_rate: must be a rate strictly between 0 and 1"),
    ("golden.records.P00001.tier=Diamond", "golden.records.P00001.tier: 'Diamond' is not valid here; must be one of Bronze"),
    ("+golden.records.P00002.colour=red", "golden.records.P00002.colour: unknown column"),
    ("network.fanout.low=60", "network.fanout: low 60 is above high 50"),
    ("output.formats=[xlsx]", "output.formats: must be a non-empty list of csv, parquet"),
    ("+population.columns.x.dist=normal", "population.columns.x.loc: missing"),
    ("activity.histories.commissions.volatility.low=0.9", "'low' must be < 'high'"),
    ("activity.histories.daily.kind=hourly", "activity.histories.daily.kind: unknown history kind 'hourly'"),
    ("activity.histories.daily.days=30", "activity.histories.daily.days: must be a whole number >= 59"),
    ("+activity.histories.daily.trend_days=3", "activity.histories.daily.trend_days: unknown key"),
    ("activity.histories.tickets.open=unresolved_tickets", "unknown column 'unresolved_tickets'"),
    ("activity.features.login_trend_30d.from=weekly", "activity.features.login_trend_30d.from: unknown history"),
    ("activity.features.login_trend_30d.expr=login_slope",
     "activity.features.login_trend_30d.expr: unknown name 'login_slope': neither an aggregate of history "
     "'daily' (logins_30d, login_trend,"),
    ("features.columns.engagement=[login_count_30d,login_count_3d]", "features.columns.engagement: unknown column 'login_count_3d'"),
    ("activity.formats=[xlsx]", "activity.formats: must be a non-empty list of csv, parquet"),
    ("activity.write=maybe", "activity.write: must be true, false or auto, got 'maybe'"),
])
def test_bad_config_is_refused_with_its_path(compose, override, fragment):
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert fragment in str(info.value)


def test_all_problems_are_reported_at_once(compose):
    with pytest.raises(ConfigError) as info:
        load_spec(compose(["n_partners=-5", "population.columns.tenure_drawn.dist=expo",
                           "churn.target_rate=2"]))
    assert len(info.value.problems) == 3


def test_golden_record_contradicting_the_rules_is_refused(compose):
    """P00001 pinned at 5,100 and Platinum cannot have proximity 0.5: refused, not silently fixed."""
    from simulator.engine import simulate

    spec = load_spec(compose(["n_partners=1500", "golden.records.P00001.tier_proximity_score=0.5"]))
    with pytest.raises(ConfigError) as info:
        simulate(spec)
    assert "golden.records.P00001 (P00001): contradicts the declared rules" in str(info.value)
    assert "tier_proximity_score is pinned to 0.5" in str(info.value)


def test_golden_scenario_contradiction_is_refused(compose):
    """A Trust_Erosion partner (delay + 18 days of silence) cannot be pinned Healthy-looking Tier_Cliff."""
    from simulator.engine import simulate

    spec = load_spec(compose(["n_partners=1500", "golden.records.P00002.churn_scenario=Tier_Cliff_Anxiety"]))
    with pytest.raises(ConfigError, match="churn_scenario is pinned to 'Tier_Cliff_Anxiety'"):
        simulate(spec)


def test_cycle_between_columns_is_refused(compose):
    from simulator.plan import build_plan

    spec = load_spec(compose(["population.columns.tier_proximity_score.expr='login_count_30d'",
                              "population.columns.login_count_30d.expr='tier_proximity_score'"]))
    with pytest.raises(ConfigError, match="cycle") as info:
        build_plan(spec)
    assert "login_count_30d reads tier_proximity_score; tier_proximity_score reads login_count_30d" in str(info.value)


def test_a_horizons_policy_reading_the_network_names_the_read_that_closes_the_cycle(compose):
    """In a horizon the network's columns at each period start follow the churn the
    decisions drive, so a logging policy reading them closes a cycle: the refusal names
    each step's read, the policy's among them."""
    from simulator.plan import build_plan

    spec = load_spec(compose(["n_partners=2000", "experiment=horizon", "+interventions.policy=[{when: "
                              "'is_master_affiliate and subnetwork_recent_churn_count > 2', mix: {call: 1.0}}]"]))
    with pytest.raises(ConfigError) as info:
        build_plan(spec)
    assert "interventions:decisions reads subnetwork_recent_churn_count from network" in str(info.value)


def test_a_new_region_is_a_yaml_change_and_mixes_may_leave_regions_out(compose):
    from simulator import generate

    cfg = compose(["n_partners=10000", "~region_mix.weights.EU", "~region_mix.weights.UK",
                   "region_mix.weights.Brazil=0.4001", "+region_mix.weights.Mexico=0.1"])
    partners = generate(cfg)["partners"]
    shares = partners["region"].value_counts(normalize=True)
    assert set(shares.index[shares > 0]) == {"Brazil", "Mexico", "Nigeria", "SE_Asia", "APAC"}
    # Mexico has no rail mix of its own: it takes the "*" entry (all four rails)
    assert set(partners.loc[partners["region"] == "Mexico", "payment_rail_type"]) == {"P2P", "Crypto", "Bank", "Agent"}


def test_one_failed_stage_is_reported_once(compose):
    """A bad network or churn setting must not make every reader of their columns fail too."""
    with pytest.raises(ConfigError) as info:
        load_spec(compose(["network.fanout.low=50", "network.fanout.high=10", "churn.target_rate=abc"]))
    assert len(info.value.problems) == 2


def test_a_broken_history_is_reported_once_not_by_every_reader_of_its_features(compose):
    with pytest.raises(ConfigError) as info:
        load_spec(compose(["activity.histories.daily.kind=hourly"]))
    assert info.value.problems == ["activity.histories.daily.kind: unknown history kind 'hourly' "
                                   "(known: commissions, daily_activity, payouts, tickets, weekly_rates)"]


@pytest.mark.parametrize("experiment", ["horizon", "horizon_histories", "easy_signal", "hard_signal",
                                        "targeted_calls", "seed_literal"])
def test_an_experiments_network_contagion_share_goes_with_the_network(compose, experiment):
    """These experiments declare a Network_Contagion share; network=none removes the
    scenario's rule (it composes before the experiment), and the share goes with it. A
    share of a scenario that never existed stays refused (tests/test_bad_inputs.py)."""
    with_network = load_spec(compose([f"experiment={experiment}"]))
    without = load_spec(compose([f"experiment={experiment}", "network=none"]))
    assert "Network_Contagion" in _shares(with_network) and "Network_Contagion" not in _shares(without)
    assert set(_shares(without)) == set(_shares(with_network)) - {"Network_Contagion"}


def _shares(spec) -> dict[str, float]:
    return next(s.shares for s in spec.stages if getattr(s, "shares", None) is not None)
