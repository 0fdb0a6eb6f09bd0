"""Issue 12's learnability targets, by the seed's own Day-2 and Day-3 checks, on the
default world (seed 42) at sizes the suite affords; the same code as
``benchmarks/learnability.py``, which prints the figures at 10k and 100k.

Sizes. The Day-2 and Day-3 checks run on the default 10,000 partners (the size the issue
declares the band for). The SHAP check runs at 100,000, the size the issue declares it
at: Network_Contagion, a master whose network fails, is 1% of churners, so at 10k it has
about 6 test churners, at 30k about 20 and at 80k 49, too few for a mean |SHAP| ranking
of its own; at 100k it has about 55 (the test asserts at least 50 before it reads the
ranking), and the other churn scenarios over a thousand each. Each world is generated
once per module, without writing the histories (``activity.write=false``, the same
features); the checks run on one thread (see ``learnability.one_thread``).
"""
from __future__ import annotations

import pytest

from benchmarks import learnability as L

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:shap")   # its colormaps, on import

SHAP_PARTNERS = 100_000
MIN_TEST_CHURNERS = 50


class World:
    """A generated world's cohort, its features, churn scenarios and the seed's split."""

    def __init__(self, compose, n: int, *overrides: str):
        from simulator import generate

        cfg = compose([f"n_partners={n}", *overrides])
        if "write" in (cfg.get("activity") or {}):       # histories reduced, not written: the same features
            cfg = compose([f"n_partners={n}", *overrides, "activity.write=false"])
        self.frame = L.cohort(generate(cfg), cfg)
        self.features, self.scenarios = L.features_of(cfg), L.churn_scenarios(cfg)
        self.train, self.test = L.split(self.frame["churn_label"].to_numpy(dtype=bool))


@pytest.fixture(scope="module")
def default_world(compose) -> World:
    return World(compose, 10_000)


@pytest.fixture(scope="module")
def day2(default_world) -> dict:
    w = default_world
    return L.day2(w.frame, w.features, w.train, w.test)


@pytest.fixture(scope="module")
def shap_ranking(compose) -> dict:
    w = World(compose, SHAP_PARTNERS)
    return L.shap_drivers(w.frame, w.features, w.train, w.test, w.scenarios)


def test_the_model_sees_the_seeds_18_features(default_world):
    assert len(default_world.features) == 18
    assert len(default_world.scenarios) == 5


def test_gradient_boosting_auc_within_the_declared_band(day2):
    """HistGradientBoostingClassifier(), default settings, 70/30 stratified split: test AUC
    in [0.80, 0.90] at 10k partners."""
    lo, hi = L.AUC_BAND
    assert lo <= day2["hgb_auc"] <= hi, day2["hgb_auc"]


@pytest.mark.slow
def test_a_horizons_last_snapshot_meets_the_day2_band(compose):
    """Issue "Time", item 9: the seed's Day 2 holds in the last snapshot
    (``partners_engineered``) of a horizon from histories, whose ``churn.signal: 3.0`` is
    declared for it (at 0.8: 0.794); and the model stays below the oracle, as in the
    one-snapshot world. At 50,000 partners, about 22,000 in the last snapshot (0.828, a
    standard error of 0.007; 0.838 at 100,000): at the default 10,000 its 4,400 leave the
    AUC at the band's floor (0.804, 0.782, 0.807 for seeds 42, 7, 1; a standard error of
    0.017), where a test would pass or fail by chance."""
    w = World(compose, 50_000, "experiment=horizon_histories")
    r = L.day2(w.frame, w.features, w.train, w.test)
    lo, hi = L.AUC_BAND
    assert lo <= r["hgb_auc"] <= hi, r["hgb_auc"]
    assert r["hgb_auc"] <= r["oracle_auc_test"] + 2 * r["hgb_auc_se"], (r["hgb_auc"], r["oracle_auc_test"])


def test_no_single_feature_separates_the_classes(day2):
    """Every feature's AUC alone (either direction) at most 0.80: no feature carries the label."""
    over = {f: round(a, 4) for f, a in day2["feature_auc"].items() if a > L.FEATURE_AUC_MAX}
    assert not over, over


def test_the_model_stays_below_the_oracle(day2):
    """The model's test AUC is at most the oracle's (``true_churn_probability``) on the same
    test rows, plus sampling noise.

    The oracle conditions on everything the churn draw depends on, so in expectation no
    function of the features ranks better; on the 2,772 test rows (554 churners) a model
    can still beat it by chance. The tolerance is 2 standard errors of the model's AUC by
    Hanley & McNeil (1982), about 0.02 here: the spread of an AUC over a test set of this
    size and class balance. It over-states the noise of the *difference* of two AUCs read
    on the same rows (their errors are positively correlated), so a model that exceeds it
    is not beating the oracle by chance.
    """
    tol = 2 * day2["hgb_auc_se"]
    assert day2["hgb_auc"] <= day2["oracle_auc_test"] + tol, (day2["hgb_auc"], day2["oracle_auc_test"], tol)


@pytest.mark.parametrize("scenario", list(L.DRIVERS))
def test_shap_ranks_the_declared_driver_in_the_top_3(shap_ranking, scenario):
    """LightGBM + shap.TreeExplainer: the scenario's declared driver among its top-3
    features by mean |SHAP| over its test churners (at 100k partners, see the module note)."""
    r = shap_ranking[scenario]
    assert r["test_churners"] >= MIN_TEST_CHURNERS, r["test_churners"]
    assert r["driver_in_top"], (r["drivers"], r["top"])


def test_kmeans_finds_the_scenarios(default_world):
    """The seed's Day 3: KMeans(n_clusters=5, n_init=10, random_state=0) on the standardized
    18 features of the churners (null network features as 0) finds at least 4 of the 5
    churn scenarios, each the dominant scenario of some cluster at 70% or more."""
    w = default_world
    r = L.day3(w.frame, w.features, w.scenarios)
    clusters = [(c["size"], c["dominant"], round(c["share"], 3)) for c in r["clusters"]]
    assert r["n_found"] >= 4, (r["found"], clusters)
