"""experiment=seed_literal: the seed's velocity features drawn from the realized churn label
by a `late_columns` group, which the plan runs after the churn stage that writes the label."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli
from simulator.errors import ConfigError
from simulator.load import load_spec
from simulator.plan import build_plan

N = 3000
# the seed's section 2.4 (generate_velocity_features): column -> {churn_label: (loc, scale)}
SEED = {
    "login_trend_30d": {True: (-0.15, 0.25), False: (0.05, 0.2)},
    "revenue_velocity": {True: (-80, 40), False: (10, 30)},
    "commission_trend_90d": {True: (-0.08, 0.12), False: (0.02, 0.08)},
    "conversion_rate_wow": {True: (-0.03, 0.02), False: (0.01, 0.015)},
}
CARRY = ("partner_id", "is_master_affiliate", "churn_label", "churn_scenario")


@pytest.fixture(scope="module")
def world(compose):
    from simulator import generate

    return generate(compose(["experiment=seed_literal", f"n_partners={N}", "db=none"]))


def test_the_velocity_features_run_after_the_churn_stage(compose):
    spec = load_spec(compose(["experiment=seed_literal"]))
    order = [s.name for s in build_plan(spec)]
    churn_label = max(i for i, s in enumerate(build_plan(spec)) if "churn_label" in s.writes)
    for column in SEED:
        assert order.index(column) > churn_label
        assert column not in {c.name for c in spec.entity.columns}   # left out of population


def test_class_means_are_the_seeds(world):
    """Each class's mean within 4 standard errors of the seed's loc (scale / sqrt(rows)),
    the project's miss rule for a declared mean: a false alarm about once in 16,000
    checks. Rounding moves a mean by well under 1e-4, the two golden records' pinned login
    trends (-0.4 for a churner, 0.2 for a stayer) by at most 0.25 / 600 = 4e-4, against a
    band of 0.03 or more."""
    partners = world["partners"]
    label = partners["churn_label"].to_numpy(dtype=bool)
    for column, classes in SEED.items():
        for value, (loc, scale) in classes.items():
            x = partners.loc[label == value, column].to_numpy(dtype=float)
            assert x.size > 600 and not np.isnan(x).any()
            assert abs(x.mean() - loc) < 4 * scale / np.sqrt(x.size), (column, value, x.mean())


def test_the_label_leaks_into_the_18_features(world):
    """The shortcut the experiment is named for: a default gradient boosting model reads the
    label off the features (measured 0.993-0.997 at 3,000 and 10,000 partners as the default
    world's roads were retuned around it)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    table = world["partners_engineered"]
    features = [c for c in table.columns if c not in CARRY]
    assert len(features) == 18 and set(SEED) <= set(features)
    x, y = table[features].astype(float).to_numpy(), table["churn_label"].to_numpy(dtype=bool)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    model = HistGradientBoostingClassifier().fit(x_train, y_train)
    assert roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]) > 0.95


def test_a_decision_that_reads_a_label_drawn_feature_is_a_cycle(compose):
    """The seed's email row reads the login trend; here the churn follows the decision, so
    the row would read a feature drawn from its own outcome. The plan refuses it by path."""
    cfg = compose(["experiment=seed_literal",
                   "interventions.effects.email=[{when:'-0.5 < login_trend_30d < 0',effect:-0.15},{effect:-0.05}]"])
    with pytest.raises(ConfigError, match=r"label_drawn\.columns\.login_trend_30d.*cycle"):
        build_plan(load_spec(cfg))


def test_bad_declarations_in_the_group_are_refused_with_their_paths(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("experiment=seed_literal", "n_partners=2000",
                   "label_drawn.columns.revenue_velocity.by=churn_lable",
                   "label_drawn.columns.login_trend_30d.scale=-1",
                   "+label_drawn.columns.region={dist:normal,loc:0,scale:1}",
                   out_dir=out, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "label_drawn.columns.revenue_velocity.by: unknown column 'churn_lable'" in proc.stderr
    assert "did you mean 'churn_label'" in proc.stderr
    assert "label_drawn.columns.login_trend_30d.scale: must be a number > 0, got -1" in proc.stderr
    assert "label_drawn.columns.region: is written by a stage" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(out.glob("*.csv"))
