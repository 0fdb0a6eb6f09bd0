"""Interventions and uplift ground truth, on a real run and against the seed's table."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from simulator.errors import ConfigError
from simulator.load import load_spec

AS_OF = pd.Timestamp("2026-01-01")


@pytest.fixture(scope="module")
def iv(default_run):
    return default_run.csv("interventions")


@pytest.fixture(scope="module")
def truth(default_run):
    return default_run.csv("uplift_truth")


def test_uplift_signals(iv):
    """The seed's test_uplift_signals."""
    assert -0.5 <= iv["uplift_signal"].min() <= 0.0
    assert 0.0 <= iv["uplift_signal"].max() <= 0.2
    call = iv.loc[iv["intervention_type"] == "call", "uplift_signal"]
    email = iv.loc[iv["intervention_type"] == "email", "uplift_signal"]
    assert call.mean() < email.mean()


def test_intervention_distribution(iv):
    """The seed's test_intervention_distribution, plus the declared mix within 4 standard errors."""
    shares = iv["intervention_type"].value_counts(normalize=True)
    assert shares["email"] > shares["call"] and shares["none"] > shares["call"]
    for kind, declared in {"call": 0.15, "email": 0.45, "none": 0.40}.items():
        assert abs(shares[kind] - declared) < 4 * np.sqrt(declared * (1 - declared) / len(iv))


def test_counts_dates_and_outcomes(iv, default_run):
    per_partner = iv["partner_id"].value_counts()
    assert per_partner.between(1, 3).all() and len(per_partner) == 10000
    date = pd.to_datetime(iv["intervention_date"])
    assert ((AS_OF - date).dt.days.between(30, 90)).all()
    assert ((pd.to_datetime(iv["outcome_recorded_at"]) - date).dt.days == 30).all()
    assert set(iv["outcome"]) == {"Retained", "Churned"}
    assert iv["intervention_id"].is_unique and iv["intervention_id"].str.len().eq(36).all()


def seed_table(p: pd.DataFrame) -> dict[str, np.ndarray]:
    """The seed's treatment-effect table (section 2.5), written out independently."""
    call = np.select([p["avg_commission_3m"] > 10000, p["payment_delay_flag"], p["is_master_affiliate"]],
                     [-0.30, -0.25, -0.28], -0.10)
    trend = p["login_trend_30d"]
    email = np.select([(trend > -0.5) & (trend < 0), p["unresolved_ticket_count"] > 0,
                       p["tier_proximity_score"] < 0.1], [-0.15, -0.12, -0.18], -0.05)
    return {"call": call, "email": email, "none": np.zeros(len(p))}


def test_uplift_truth_is_the_seeds_table(default_run, truth):
    partners = default_run.csv("partners")
    assert (truth["partner_id"] == partners["partner_id"]).all()
    for kind, expected in seed_table(partners).items():
        assert np.array_equal(truth[f"effect_{kind}"].to_numpy(), expected), kind
    assert truth["base_churn_probability"].between(0, 1).all()
    # the base probability is the churn model's own: the labels were drawn from it, so it
    # ranks churners above non-churners (AUC about 0.71 at the default rules; chance is 0.5)
    base, label = truth["base_churn_probability"].to_numpy(), partners["churn_label"].to_numpy()
    ranks = pd.Series(base).rank().to_numpy()
    auc = (ranks[label].sum() - label.sum() * (label.sum() + 1) / 2) / (label.sum() * (~label).sum())
    assert auc > 0.65


def test_realized_effects_match_the_declared_table(iv, truth):
    """Per (type, table row): mean within 0.01 of the declared effect, sd near 0.08.

    Groups with >= 150 interventions: the mean's standard error is <= 0.08/sqrt(150) =
    0.0065 and the sd's about 0.0046; clipping at [-0.5, 0.2] touches < 1% of draws.
    """
    merged = iv.merge(truth, on="partner_id")
    merged["declared"] = np.choose(merged["intervention_type"].map({"call": 0, "email": 1, "none": 2}),
                                   [merged["effect_call"], merged["effect_email"], merged["effect_none"]])
    groups = merged.groupby(["intervention_type", "declared"])["uplift_signal"].agg(["mean", "std", "size"])
    checked = groups[groups["size"] >= 150]
    assert len(checked) >= 7                              # most of the 9 table rows are tested
    assert ((checked["mean"] - checked.index.get_level_values("declared")).abs() < 0.01).all(), checked
    assert ((checked["std"] - 0.08).abs() < 0.015).all(), checked


def test_outcomes_follow_the_final_probability(iv, truth):
    merged = iv.merge(truth, on="partner_id")
    final = np.clip(merged["base_churn_probability"] + merged["uplift_signal"], 0, 1)
    churned = merged["outcome"] == "Churned"
    se = np.sqrt((final * (1 - final)).sum()) / len(merged)
    assert abs(churned.mean() - final.mean()) < 4 * se
    # treatment lowers churn: the calls' churn rate is below the controls'
    by_type = churned.groupby(merged["intervention_type"]).mean()
    assert by_type["call"] < by_type["email"] < by_type["none"]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_changing_mix_or_table_leaves_partners_and_network_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_cli("n_partners=1500", out_dir=a)
    run_cli("n_partners=1500", "interventions.mix.call=0.25", "interventions.mix.none=0.30",
            "interventions.effects.call.0.effect=-0.4", out_dir=b)
    for name in ("partners.csv", "partners.parquet", "network_relationships.csv",
                 "network_relationships.parquet"):
        assert _digest(a / name) == _digest(b / name), name
    assert _digest(a / "interventions.csv") != _digest(b / "interventions.csv")


SMS = """# @package interventions
defaults:
  - default
  - _self_
mix: {call: 0.15, email: 0.35, none: 0.30, sms: 0.20}
effects:
  sms:
    - {when: "login_count_30d > 20", effect: -0.07}
    - {effect: -0.02}
"""


def test_a_new_intervention_type_is_a_yaml_change(tmp_path):
    conf = tmp_path / "my_conf" / "interventions"
    conf.mkdir(parents=True)
    (conf / "with_sms.yaml").write_text(SMS)
    out = tmp_path / "run"
    run_cli("n_partners=2000", f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]",
            "interventions=with_sms", out_dir=out)
    iv = pd.read_csv(out / "interventions.csv")
    truth = pd.read_csv(out / "uplift_truth.csv")
    partners = pd.read_csv(out / "partners.csv")
    assert abs((iv["intervention_type"] == "sms").mean() - 0.20) < 0.02
    expected = np.where(partners["login_count_30d"] > 20, -0.07, -0.02)
    assert np.array_equal(truth["effect_sms"].to_numpy(), expected)


@pytest.mark.parametrize("override, fragment", [
    ("interventions.mix.call=0.3", "interventions.mix: weights sum to 1.15, must sum to 1"),
    ("interventions.effects.call.0.when='avg_comission > 1'", "interventions.effects.call[0]: unknown column 'avg_comission'"),
    ("+interventions.effects.sms=[{effect: -0.1}]", "interventions.effects.sms: unknown intervention type 'sms'"),
    ("interventions.clip.min=0.5", "interventions.clip: min 0.5 must be below max 0.2"),
    ("interventions.noise.scale=-1", "interventions.noise: needs loc (a number) and scale (a number >= 0)"),
    ("interventions.effects.email.0.when='x.y'", "interventions.effects.email[0].when"),
])
def test_bad_intervention_config_is_refused(compose, override, fragment):
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert fragment in str(info.value)
