"""Stages on small hand-made inputs: calibration, network builder, scenarios, plan order."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import ConfigError
from simulator.expr import compile_expr
from simulator.plan import build_plan
from simulator.load import load_spec
from simulator.spec import RuleSpec
from simulator.stages import churn, network, scenarios
from simulator.stages.network import Network
from simulator.stages.scenarios import Scenarios
from simulator.streams import stream

NET = Network("network", "network", "network_relationships", "m", (10, 50), (30, 365), 30, "h", "r", "c", "d")


@pytest.mark.parametrize("target", [0.05, 0.2, 0.5])
def test_calibration_realizes_the_target_exactly(target):
    latent = stream(1, "lat").normal(size=9999)
    b = churn.calibrate(latent, target)
    assert (latent + b > 0).sum() == round(target * latent.size)


def test_probability_is_the_sigmoid_of_the_calibrated_score():
    p = churn.probability(np.array([0.0, 2.0]), -2.0)
    assert np.allclose(p, [1 / (1 + np.e ** 2), 0.5])


def test_score_ignores_null_inputs():
    rules = (RuleSpec("a", "r.a", compile_expr("x > 2"), 1.5), RuleSpec("b", "r.b", compile_expr("y"), 2.0))
    s = churn.score(rules, {"x": np.array([3.0, np.nan]), "y": np.array([0.5, np.nan])}, 2)
    assert s.tolist() == [2.5, 0.0]


def test_network_blocks_until_the_pool_runs_out():
    masters = np.zeros(100, dtype=bool)
    masters[:5] = True                       # 5 masters x 10-50 subs from a pool of 95
    none = np.zeros(100, dtype=bool)
    edges = network.build(NET, masters, none, none, stream(1, "net"), [])
    assert np.unique(edges.sub).size == edges.sub.size == 95      # pool exhausted, unique
    assert not masters[edges.sub].any() and masters[edges.master].all()
    counts = np.bincount(edges.master, minlength=5)[:5]
    assert 10 <= counts[0] <= 50             # the first master always gets a full block
    short = np.flatnonzero(counts < 10)
    assert short.size and (counts[short[0] + 1:] == 0).all()   # then one partial block, then none


def test_golden_master_gets_subs_that_realize_its_pins():
    n = 400
    masters = np.zeros(n, dtype=bool)
    masters[[0, 1]] = True
    churned = np.arange(n) % 3 == 0
    recent = churned & (np.arange(n) % 2 == 0)
    g = network.GoldenMaster(0, "P00001", "golden.records[0]", health=35.0, recent=4)
    edges = network.build(NET, masters, churned, recent, stream(1, "g"), [g])
    health, lately = network.features(edges, n, masters, churned, recent)
    assert health[0] == 35.0 and lately[0] == 4
    assert np.isnan(health[2:]).all()


def test_impossible_golden_network_is_refused():
    g = network.GoldenMaster(0, "P00001", "golden.records[0]", health=33.33, recent=0)
    with pytest.raises(ConfigError, match="no fan-out"):
        network._golden_shape(g, (10, 11))


def test_scenarios_first_match_wins():
    spec = Scenarios("scenarios", "scenarios", "s", "churned", "Healthy", "Passive", (
        RuleSpec("Trust", "p0", compile_expr("a")), RuleSpec("Cliff", "p1", compile_expr("b"))))
    env = {"a": np.array([True, True, False, False]), "b": np.array([True, True, True, False])}
    got = scenarios.assign(spec, env, np.array([False, True, True, True]), 4)
    assert list(got) == ["Healthy", "Trust", "Cliff", "Passive"]


def test_plan_resolves_subs_before_masters(compose):
    order = [s.name for s in build_plan(load_spec(compose()))]
    assert order.index("churn@outside") < order.index("network") < order.index("churn@inside")
    # trends follow the churn label; ticket sentiment (read by the churn model) comes before it
    assert order.index("churn@inside") < order.index("history:daily") < len(order)
    assert order.index("history:tickets") < order.index("churn@outside")
    assert order.index("tier") < order.index("tier_threshold") < order.index("tier_proximity_score")


def test_without_network_reads_churn_runs_once(compose):
    spec = load_spec(compose(["~churn.rules.contagion",
                              "scenarios.rules.Network_Contagion.when='is_master_affiliate and tenure_months > 100'"]))
    order = [s.name for s in build_plan(spec)]
    assert "churn" in order and order.index("churn") < order.index("network")


def test_ids_and_uuids_are_vectorized_and_standard():
    import uuid

    from simulator import ids

    assert list(ids.partner_ids("P", 5, 3)) == ["P00001", "P00002", "P00003"]
    assert ids.partner_ids("P", 5, 100_000)[-1] == "P100000"          # wider when n needs it
    drawn = ids.uuid4s(stream(3, "u"), 1000)
    parsed = [uuid.UUID(u) for u in drawn]
    assert all(p.version == 4 and p.variant == uuid.RFC_4122 for p in parsed)
    assert [str(p) for p in parsed] == list(drawn) and len(set(drawn)) == 1000
    assert list(ids.uuid4s(stream(3, "u"), 5)) == list(drawn[:5])     # seeded
