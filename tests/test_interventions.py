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
    # one decision per episode a partner of the cohort starts active: 1-3, fewer for early churners
    cohort = default_run.csv("partners_engineered")
    per_partner = iv["partner_id"].value_counts()
    assert per_partner.between(1, 3).all() and set(per_partner.index) == set(cohort["partner_id"])
    date = pd.to_datetime(iv["intervention_date"])
    assert set((AS_OF - date).dt.days) == {90, 60, 30}            # the seed's 30-90 days, per episode
    assert ((pd.to_datetime(iv["outcome_recorded_at"]) - date).dt.days == 30).all()
    assert set(iv["outcome"]) == {"Retained", "Churned"}
    assert iv["intervention_id"].is_unique and iv["intervention_id"].str.len().eq(36).all()
    # a partner's outcome is its churn: Churned on the episode it left, Retained before
    partners = default_run.csv("partners").set_index("partner_id")
    churned_at = pd.to_datetime(partners.loc[iv["partner_id"], "churned_at"]).to_numpy()
    in_window = (churned_at > date.to_numpy()) & (churned_at <= pd.to_datetime(iv["outcome_recorded_at"]).to_numpy())
    assert ((iv["outcome"] == "Churned").to_numpy() == in_window).all()
    short = per_partner[per_partner < 3].index
    assert cohort.set_index("partner_id").loc[short, "churn_label"].all()    # only churners stop early


def seed_table(p: pd.DataFrame) -> dict[str, np.ndarray]:
    """The seed's treatment-effect table (section 2.5), written out independently."""
    call = np.select([p["avg_commission_3m"] > 10000, p["payment_delay_flag"], p["is_master_affiliate"]],
                     [-0.30, -0.25, -0.28], -0.10)
    trend = p["login_trend_30d"]
    email = np.select([(trend > -0.5) & (trend < 0), p["unresolved_ticket_count"] > 0,
                       p["tier_proximity_score"] < 0.1], [-0.15, -0.12, -0.18], -0.05)
    return {"call": call, "email": email, "none": np.zeros(len(p))}


def _outcome_by_quadrature(q: float, mu: float, sigma: float = 0.08, lo: float = -0.5, hi: float = 0.2) -> float:
    """E[clip(q + clip(mu + eps, lo, hi), 0, 1)], eps ~ N(0, sigma), by numerical quadrature
    (an independent check of the closed form)."""
    from scipy import integrate, stats

    f = lambda x: min(max(q + min(max(x, lo), hi), 0.0), 1.0) * stats.norm.pdf(x, mu, sigma)
    kinks = sorted({lo, hi, -q, 1 - q})
    edges = [mu - 10 * sigma, *[k for k in kinks if mu - 10 * sigma < k < mu + 10 * sigma], mu + 10 * sigma]
    return sum(integrate.quad(f, a, b, epsabs=1e-12)[0] for a, b in zip(edges[:-1], edges[1:]))


def test_uplift_truth_is_exact(default_run, truth):
    cohort = default_run.csv("partners_engineered")
    partners = default_run.csv("partners").set_index("partner_id").loc[cohort["partner_id"]].reset_index()
    assert (truth["partner_id"] == cohort["partner_id"]).all()          # one row per partner of the cohort
    for kind, expected in seed_table(partners).items():                 # the declared table stays beside it
        assert np.array_equal(truth[f"declared_effect_{kind}"].to_numpy(), expected), kind
    assert truth["base_churn_probability"].between(0, 1).all()
    # the truth integrates the noise and both clips out: check 40 partners by quadrature, to 1e-6
    base = truth["base_churn_probability"].to_numpy()
    for i in np.linspace(0, len(truth) - 1, 40).astype(int):
        # the control (none) has no effect and no noise (interventions.noise.control: false):
        # P(Churned | none) is the per-episode hazard q itself
        q = base[i]
        for kind in ("call", "email"):
            mu = truth.loc[i, f"declared_effect_{kind}"]
            assert abs(truth.loc[i, f"effect_{kind}"] - (_outcome_by_quadrature(q, mu) - base[i])) < 1e-6
    # the clip at 0 makes the true effect smaller than the expected realized effect (the
    # declared one, noise clipped to [-0.5, 0.2]) where churn risk is low; below a hazard of
    # 0.8 the clip at 1 never binds (0.8 + 0.2), so there it can only weaken the effect
    from simulator.truth import clipped_mean
    realized = clipped_mean(truth["declared_effect_call"].to_numpy(), 0.08, -0.5, 0.2)
    free = base <= 0.8
    assert (truth["effect_call"].to_numpy()[free] >= realized[free] - 1e-12).all()
    assert truth["effect_call"].mean() > truth["declared_effect_call"].mean()


def test_realized_effects_match_the_declared_table(iv, default_run):
    """Per (type, table row): mean within 0.01 of the declared effect, sd near 0.08 (0 for
    the control, whose effect is exactly 0).

    Groups with >= 150 interventions: the mean's standard error is <= 0.08/sqrt(150) =
    0.0065 and the sd's about 0.0046; clipping at [-0.5, 0.2] touches < 1% of draws.
    """
    truth = default_run.csv("uplift_truth")
    merged = iv.merge(truth, on="partner_id")
    merged["declared"] = np.choose(merged["intervention_type"].map({"call": 0, "email": 1, "none": 2}),
                                   [merged["declared_effect_call"], merged["declared_effect_email"],
                                    merged["declared_effect_none"]])
    groups = merged.groupby(["intervention_type", "declared"])["uplift_signal"].agg(["mean", "std", "size"])
    checked = groups[groups["size"] >= 150]
    assert len(checked) >= 7                              # most of the 9 table rows are tested
    assert ((checked["mean"] - checked.index.get_level_values("declared")).abs() < 0.01).all(), checked
    treated = checked.index.get_level_values("intervention_type") != "none"
    assert ((checked.loc[treated, "std"] - 0.08).abs() < 0.015).all(), checked
    assert (checked.loc[~treated, "std"] == 0).all(), checked    # the control: exactly 0, no noise


def test_outcomes_follow_their_truth(iv):
    churned = iv["outcome"] == "Churned"
    p = iv["outcome_probability"]
    for kind, rows in iv.groupby("intervention_type"):
        x, q = churned[rows.index], p[rows.index]
        assert abs(x.mean() - q.mean()) < 4 * np.sqrt((q * (1 - q)).sum()) / len(rows), kind
    # treatment lowers churn: the calls' churn rate is below the controls'
    by_type = churned.groupby(iv["intervention_type"]).mean()
    assert by_type["call"] < by_type["none"] and by_type["email"] < by_type["none"]
    # the default policy is the seed's random mix: every row's propensity is its type's share
    assert np.allclose(iv["propensity"], iv["intervention_type"].map({"call": 0.15, "email": 0.45, "none": 0.40}))


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_changing_mix_or_table_moves_only_what_follows_from_it(tmp_path):
    # interventions cause churn in the label window: the label, its date and scenario move;
    # every partners column before it, who left before the feature date and the network do not
    a, b = tmp_path / "a", tmp_path / "b"
    run_cli("n_partners=1500", out_dir=a)
    run_cli("n_partners=1500", "interventions.mix.call=0.25", "interventions.mix.none=0.30",
            "interventions.effects.call.0.effect=-0.4", out_dir=b)
    pa_, pb = pd.read_parquet(a / "partners.parquet"), pd.read_parquet(b / "partners.parquet")
    # (and the label's own probability, which integrates the partner's decisions)
    moved = {"churn_label", "churned_at", "churn_scenario", "true_churn_probability"}
    pd.testing.assert_frame_equal(pa_.drop(columns=list(moved)), pb.drop(columns=list(moved)))
    feature_date = pd.Timestamp("2025-10-03")
    assert ((pa_["churned_at"] <= feature_date) == (pb["churned_at"] <= feature_date)).all()
    na, nb = pd.read_parquet(a / "network_relationships.parquet"), pd.read_parquet(b / "network_relationships.parquet")
    pd.testing.assert_frame_equal(na.drop(columns="is_active"), nb.drop(columns="is_active"))
    assert (pa_["churn_label"] != pb["churn_label"]).any()
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
    partners = partners.set_index("partner_id").loc[truth["partner_id"]]
    expected = np.where(partners["login_count_30d"] > 20, -0.07, -0.02)
    assert np.array_equal(truth["declared_effect_sms"].to_numpy(), expected)
    from simulator.truth import clipped_mean
    realized = clipped_mean(expected.astype(float), 0.08, -0.5, 0.2)   # the noise clipped to [-0.5, 0.2]
    base = truth["base_churn_probability"].to_numpy()
    free = base <= 0.8                   # the hazards where the clip at 1 cannot bind (0.8 + 0.2)
    assert (truth["effect_sms"].to_numpy()[free] >= realized[free] - 1e-12).all()  # the clip at 0 only weakens it
    # the control has no noise, a noisy sms does: for a partner at almost no risk it can only
    # add churn ("sleeping dogs"), so the true effect falls with the risk within each row and
    # is a reduction wherever the risk is real
    for value in (-0.07, -0.02):
        rows = np.flatnonzero(expected == value)
        effect = truth["effect_sms"].to_numpy()[rows][np.argsort(base[rows], kind="stable")]
        assert (np.diff(effect) <= 1e-12).all(), value
    assert (truth.loc[base >= 0.2, "effect_sms"] < 0).all() and (base >= 0.2).sum() > 50   # per-episode risk


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
