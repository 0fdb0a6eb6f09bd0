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

NET = Network("network", "network", "network_relationships", "m", (10, 50), 0.5, 0.15, 0.8, 365, 30,
              "h", "r", "c", "d", "j")
NAT = np.datetime64("NaT", "us")


@pytest.mark.parametrize("target", [0.05, 0.2, 0.5])
def test_calibration_realizes_the_target_exactly(target):
    # a cohort of 9,999 (everyone stays to the feature date): the rate is a step function
    # of the intercept, and the solved one puts exactly round(target x cohort) past it
    label_t = stream(1, "lat").normal(size=9999)
    b = churn.calibrate(label_t, np.ones(9999, dtype=bool), round(target * 9999))
    assert (label_t < b).sum() == round(target * label_t.size)


def test_calibration_counts_only_the_cohort():
    label_t = stream(2, "lat").normal(size=10_000)
    cohort = np.arange(10_000) % 4 != 0                                 # a quarter gone before
    label_t[:3] = -np.inf                                                # certain churners count too
    b = churn.calibrate(label_t, cohort, round(0.2 * cohort.sum()))
    assert (label_t[cohort] < b).sum() == round(0.2 * cohort.sum())


def test_label_thresholds_match_the_episode_draws():
    # a partner churns when some episode's draw u_j is below its hazard q plus the effect:
    # exactly when intercept + score passes the closed-form threshold
    rng = stream(3, "t")
    u, effect = rng.random((5000, 3)), rng.normal(-0.05, 0.1, (5000, 3))
    t = churn.label_thresholds(u, effect, 3)
    for x in (-3.0, -1.0, 0.5):
        q = churn.episode_hazard(churn.probability(np.zeros(5000), x), 3)
        assert ((u < q[:, None] + effect).any(axis=1) == (t < x)).all()


def test_probability_is_the_sigmoid_of_the_calibrated_score():
    p = churn.probability(np.array([0.0, 2.0]), -2.0)
    assert np.allclose(p, [1 / (1 + np.e ** 2), 0.5])


def test_score_ignores_null_inputs():
    rules = (RuleSpec("a", "r.a", compile_expr("x > 2"), 1.5), RuleSpec("b", "r.b", compile_expr("y"), 2.0))
    s = churn.score(rules, {"x": np.array([3.0, np.nan]), "y": np.array([0.5, np.nan])}, 2)
    assert s.tolist() == [2.5, 0.0]


def _lives(n):
    return np.full(n, np.datetime64("2025-01-01", "us")), np.full(n, NAT)


def test_network_meets_its_declared_shares():
    n = 4000
    masters = np.zeros(n, dtype=bool)
    masters[:100] = True                     # 100 masters, half without subs, 30 subs on average
    none = np.zeros(n, dtype=bool)
    edges = network.build(NET, masters, none, none, stream(1, "net"), [], *_lives(n))
    assert np.unique(edges.sub).size == edges.sub.size                # a tree: one master per sub
    assert not masters[edges.sub].any() and masters[edges.master].all()
    counts = np.bincount(edges.master, minlength=100)[:100]
    assert (counts == 0).sum() == 50                                  # exactly the declared share
    assert ((counts[counts > 0] >= 10) & (counts[counts > 0] <= 50)).all()   # no partial block


def test_a_world_too_small_for_its_masters_keeps_whole_blocks(caplog):
    masters = np.zeros(100, dtype=bool)
    masters[:20] = True                      # 10 masters with >= 10 subs from a pool of 80
    none = np.zeros(100, dtype=bool)
    edges = network.build(NET, masters, none, none, stream(1, "net"), [], *_lives(100))
    counts = np.bincount(edges.master, minlength=20)[:20]
    assert ((counts == 0) | (counts >= 10)).all() and edges.sub.size <= 80
    assert (counts == 0).sum() > 10 and "recruit no one" in caplog.text


def test_subs_that_left_before_their_master_joined_are_swapped():
    n = 3000
    masters = np.zeros(n, dtype=bool)
    masters[:60] = True
    joined = np.full(n, np.datetime64("2024-01-01", "us"))
    joined[:30] = np.datetime64("2025-09-20", "us")                    # young masters
    gone = np.full(n, NAT)
    gone[60:600] = np.datetime64("2025-09-01", "us")                   # subs who left before those joined
    edges = network.build(NET, masters, ~np.isnat(gone), none := np.zeros(n, bool), stream(1, "m"), [],
                          joined, gone)
    assert (gone[edges.sub] <= joined[edges.master]).any()             # the random draw pairs some
    matched = network._match(edges, joined, gone, 0, stream(2, "m"), np.datetime64("2025-10-03", "us"))
    assert not (gone[matched.sub] <= joined[matched.master]).any()
    assert sorted(matched.sub) == sorted(edges.sub)                    # the same subs, swapped
    assert none.sum() == 0


def test_golden_master_gets_subs_that_realize_its_pins():
    n = 2000
    masters = np.zeros(n, dtype=bool)
    masters[[0, 1]] = True
    churned = np.arange(n) % 3 == 0
    recent = churned & (np.arange(n) % 2 == 0)
    g = network.GoldenMaster(0, "P00001", "golden.records[0]", health=35.0, recent=4)
    edges = network.build(NET, masters, churned, recent, stream(1, "g"), [g], *_lives(n))
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
    # one timeline: behaviour comes before the churn it leads to and reads none of it (the
    # histories end on each partner's observation end, dated after); the decisions of the
    # label window (which may read the masters' network) before the window's churn, their
    # outcomes after it
    plan = {s.name: s for s in build_plan(load_spec(compose()))}
    churn_writes = plan["churn@outside"].writes | plan["churn@inside"].writes
    for history in ("history:daily", "history:tickets", "history:commissions"):
        assert order.index(history) < order.index("churn@inside") and not plan[history].reads & churn_writes
    assert order.index("history:daily") < order.index("interventions:decisions") < order.index("churn@inside")
    assert "realized_effect" not in plan["churn@outside"].reads
    assert order.index("churn@inside") < order.index("interventions:outcomes")
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


def test_the_intercept_search_is_the_closed_form_when_nothing_moves_and_meets_k_when_something_does():
    """solve_intercept over the still thresholds: with no moving state it returns calibrate's
    order-statistics middle exactly (a dozen plays, not a bisection of the line); with a
    state that adds churners above some intercept (contagion), the count it lands on is k."""
    from simulator.stages.churn import calibrate, solve_intercept

    t = np.random.default_rng(3).normal(size=500)
    still = lambda b: int(np.count_nonzero(t < b))
    for k in (0, 1, 37, 250, 499, 500, 600):
        calls = []
        b = solve_intercept(lambda b: calls.append(b) or still(b), k, t)
        assert b == calibrate(t, np.ones(t.size, dtype=bool), k), k
        assert still(b) == min(max(k, 0), t.size) and len(calls) <= 12, (k, len(calls))
    # two extra churners once the intercept passes 0.1 (a master tipped by its subs): k is met
    moved = lambda b: still(b) + (2 if b > 0.1 else 0)
    for k in (200, 257, 258, 259, 260, 261, 300):      # 258 still churners below 0.1
        b = solve_intercept(moved, k, t)
        assert moved(b) == k or (moved(b) == k + 1 and still(0.1) + 2 > k > still(0.1)), (k, moved(b))
