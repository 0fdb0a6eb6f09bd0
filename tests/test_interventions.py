"""Interventions and uplift ground truth, on a real run and against the seed's table."""
from __future__ import annotations

import hashlib
import json

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
    """The seed's test_intervention_distribution (its mix holds under the default's targeting)."""
    shares = iv["intervention_type"].value_counts(normalize=True)
    assert shares["email"] > shares["call"] and shares["none"] > shares["call"]


def test_the_logging_policy_targets_high_value_partners(iv, default_run):
    """Each decision's propensity is its type's share under the policy row its partner
    matched: at the feature date (whose state the partners table holds), 0.7/0.25/0.05 for a
    partner with avg_commission_3m above 3,000, else 0.05/0.45/0.5 for one with fewer than
    5 logins in 30 days, else the mix 0.15/0.45/0.40; every propensity lies in [0.05, 0.95],
    and each arm's share is the mean of its propensities within 4 standard errors."""
    partners = default_run.csv("partners").set_index("partner_id")
    at = pd.to_datetime(iv["intervention_date"]) == pd.Timestamp("2025-10-03")
    rows = iv[at]
    high = (partners.loc[rows["partner_id"], "avg_commission_3m"] > 3000).to_numpy()
    quiet = ~high & (partners.loc[rows["partner_id"], "login_count_30d"] < 5).to_numpy()
    targeted = {"call": 0.7, "email": 0.25, "none": 0.05}
    reminded = {"call": 0.05, "email": 0.45, "none": 0.5}
    mix = {"call": 0.15, "email": 0.45, "none": 0.40}
    kind = rows["intervention_type"].astype(str)
    expected = np.where(high, kind.map(targeted), np.where(quiet, kind.map(reminded), kind.map(mix)))
    assert np.allclose(rows["propensity"], expected)
    assert 0.1 < high.mean() < 0.3 and 0.1 < quiet.mean() < 0.3      # about a fifth each
    assert iv["propensity"].between(0.05, 0.95).all()
    share = {t: np.where(high, targeted[t], np.where(quiet, reminded[t], mix[t])) for t in mix}
    for t, e in share.items():
        assert abs((kind == t).mean() - e.mean()) < 4 * np.sqrt((e * (1 - e)).sum()) / len(rows), t
    # calls go mostly to high-value partners: more than half of the feature date's calls
    assert high[(kind == "call").to_numpy()].mean() > 0.5


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
    """The seed's treatment-effect table (section 2.5), written out independently, with the
    default's sleeping dogs: a call raises a dormant partner's hazard by 15%."""
    call = np.select([p["avg_commission_3m"] > 10000, p["payment_delay_flag"], p["is_master_affiliate"],
                      p["login_count_30d"] < 3], [-0.30, -0.25, -0.28, 0.15], -0.10)
    trend = p["login_trend_30d"]
    email = np.select([(trend > -0.5) & (trend < 0), p["unresolved_ticket_count"] > 0,
                       p["tier_proximity_score"] < 0.1], [-0.15, -0.12, -0.18], -0.05)
    return {"call": call, "email": email, "none": np.zeros(len(p))}


def _outcome_by_quadrature(q: float, mu: float, sigma: float = 0.08, lo: float = -0.5, hi: float = 0.2,
                           relative: bool = True) -> float:
    """E[clip(q (1 + clip(mu + eps, lo, hi)), 0, 1)] (relative: false, E[clip(q + clip(mu +
    eps, lo, hi), 0, 1)]), eps ~ N(0, sigma), by numerical quadrature (an independent check of
    the closed form)."""
    from scipy import integrate, stats

    given = (lambda e: q * (1 + e)) if relative else (lambda e: q + e)
    f = lambda x: min(max(given(min(max(x, lo), hi)), 0.0), 1.0) * stats.norm.pdf(x, mu, sigma)
    kinks = sorted({lo, hi, *((1 / q - 1,) if relative and q > 0 else ()), *(() if relative else (-q, 1 - q))})
    edges = [mu - 10 * sigma, *[k for k in kinks if mu - 10 * sigma < k < mu + 10 * sigma], mu + 10 * sigma]
    return sum(integrate.quad(f, a, b, epsabs=1e-12)[0] for a, b in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("relative", [True, False])
def test_the_closed_form_is_the_integral(relative):
    """outcome_probability against quadrature, on a grid of hazards (0 and 1 included) and
    declared effects (inside and beyond the clips), both readings of an effect."""
    from simulator.truth import outcome_probability

    for q in (0.0, 0.003, 0.05, 0.2, 0.6, 0.84, 0.9, 1.0):
        for mu in (-0.6, -0.3, -0.05, 0.0, 0.15, 0.25):
            got = float(outcome_probability(np.array([q]), np.array([mu]), 0.08, (-0.5, 0.2), relative)[0])
            assert abs(got - _outcome_by_quadrature(q, mu, relative=relative)) < 1e-7, (q, mu)


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
    # an effect is a share of the hazard: below a hazard of 1 / 1.2 the clip at 1 never binds,
    # so there the true effect is the hazard times the expected realized effect (the declared
    # one, noise clipped to [-0.5, 0.2])
    from simulator.truth import clipped_mean
    realized = clipped_mean(truth["declared_effect_call"].to_numpy(), 0.08, -0.5, 0.2)
    free = base <= 1 / 1.2
    assert free.mean() > 0.99
    assert np.allclose(truth["effect_call"].to_numpy()[free], base[free] * realized[free], atol=1e-12)
    # sleeping dogs: a call raises churn for the dormant partners; at least 1% of the cohort
    # by more than a point
    assert (truth["effect_call"] > 0.01).mean() >= 0.01
    assert (truth.loc[truth["declared_effect_call"] > 0, "effect_call"] >= 0).all()


def test_realized_effects_match_the_declared_table(iv, default_run):
    """Per (type, table row): mean within 0.01 of the declared effect with its noise clipped
    (the clip at 0.2 binds on the sleeping dogs' 0.15: a 27% tail), sd near 0.08 where the
    clip touches few draws (0 for the control, whose effect is exactly 0).

    Groups with >= 150 interventions: the mean's standard error is <= 0.08/sqrt(150) =
    0.0065 and the sd's about 0.0046; clipping at [-0.5, 0.2] touches < 1% of the other
    rows' draws.
    """
    from simulator.truth import clipped_mean

    truth = default_run.csv("uplift_truth")
    merged = iv.merge(truth, on="partner_id")
    merged["declared"] = np.choose(merged["intervention_type"].map({"call": 0, "email": 1, "none": 2}),
                                   [merged["declared_effect_call"], merged["declared_effect_email"],
                                    merged["declared_effect_none"]])
    groups = merged.groupby(["intervention_type", "declared"])["uplift_signal"].agg(["mean", "std", "size"])
    checked = groups[groups["size"] >= 150]
    assert len(checked) >= 7                              # most of the 10 table rows are tested
    declared = checked.index.get_level_values("declared").to_numpy()
    treated = checked.index.get_level_values("intervention_type") != "none"
    expected = np.where(treated, clipped_mean(declared, 0.08, -0.5, 0.2), 0.0)
    assert ((checked["mean"] - expected).abs() < 0.01).all(), checked
    spread = treated & (declared < 0)                        # (the clip narrows the sleeping dogs' spread)
    assert ((checked.loc[spread, "std"] - 0.08).abs() < 0.015).all(), checked
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
policy: []                 # the random mix for every partner (the default's targeted row knows no sms)
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
    free = base <= 1 / 1.2               # the hazards where the clip at 1 cannot bind (q x 1.2)
    assert np.allclose(truth["effect_sms"].to_numpy()[free], base[free] * realized[free], atol=1e-12)
    # a share of the hazard: the true effect falls with the risk within each row and is a
    # reduction wherever there is risk
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
    ("interventions.clip.min=-1.5", "interventions.clip.min: must be at least -1 with relative effects"),
    ("interventions.relative=maybe", "interventions.relative: must be true (an effect is a share of the hazard"),
    ("interventions.noise.scale=-1", "interventions.noise: needs loc (a number) and scale (a number >= 0)"),
    ("interventions.effects.email.0.when='x.y'", "interventions.effects.email[0].when"),
    ("interventions.mean_relative_effect.call=-2", "interventions.mean_relative_effect.call: must be a mean relative "
                                                   "change of the hazard in [-1, 1]"),
    ("+interventions.mean_relative_effect.sms=-0.1", "interventions.mean_relative_effect.sms: unknown intervention type"),
    ("interventions.mean_relative_effect=0.1", "interventions.mean_relative_effect: must map intervention type"),
])
def test_bad_intervention_config_is_refused(compose, override, fragment):
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert fragment in str(info.value)


def test_a_targeted_policy_confounds_the_naive_arm_difference(iv, default_run):
    """The naive difference of the call and none arms' churn is biased by whom the policy
    calls (high-value partners, seldom the quiet ones); weighting by the written propensity
    removes it. Both with each decision's exact outcome_probability in place of its outcome
    (the noise of the outcomes gone; the policy's draws of who got what stay): the naive
    difference misses the truth (the mean effect_call of decision_truth) by more than 4
    standard errors of a 100,000-partner world (this world's, over sqrt(10)), the weighted
    one is within 4 of this world's."""
    dt = default_run.parquet("decision_truth")
    truth = dt["effect_call"].mean()
    p, kind, w = iv["outcome_probability"].to_numpy(), iv["intervention_type"].to_numpy(), 1 / iv["propensity"].to_numpy()
    call, none = kind == "call", kind == "none"
    naive = p[call].mean() - p[none].mean()
    weighted = (w * p)[call].sum() / w[call].sum() - (w * p)[none].sum() / w[none].sum()
    found = json.loads((default_run.dir / "stats.json").read_text())["realized"]["logging_policy"]["call"]
    assert abs(naive - truth) > 4 * found["naive_se"] / np.sqrt(10), (naive, truth, found)
    assert abs(weighted - truth) < 4 * found["ipw_se"], (weighted, truth, found)
    assert abs(found["ipw_z"]) < 4                       # and on the realized outcomes
    assert found["relative_effect"] > -0.25               # a call cuts a period's hazard by less than a quarter


def test_the_declared_mean_relative_effect_is_a_target_met(default_run, compose):
    """interventions.mean_relative_effect: per type a stats.json target, the mean of
    effect_<type> / base_churn_probability over decision_truth (base above 0), met; a
    reduction of at most a quarter by default."""
    declared = compose([])["interventions"]["mean_relative_effect"]
    assert set(declared) == {"call", "email"} and all(-0.25 <= v < 0 for v in declared.values())
    dt = default_run.parquet("decision_truth")
    dt = dt[dt["base_churn_probability"] > 0]
    targets = {t["target"]: t for t in json.loads((default_run.dir / "stats.json").read_text())["targets"]}
    for kind, value in declared.items():
        t = targets[f"interventions.mean_relative_effect.{kind}"]
        assert t["declared"] == value and not t["miss"] and t["n"] == len(dt)
        assert t["realized"] == pytest.approx((dt[f"effect_{kind}"] / dt["base_churn_probability"]).mean(), abs=1e-6)
        assert 0 < t["se"] < 0.01


def test_the_randomized_experiment_is_an_rct(compose):
    """experiment=randomized: no targeted row, so every decision's propensity is the mix share."""
    spec = load_spec(compose(["experiment=randomized"]))
    iv = next(s for s in spec.stages if s.name == "interventions")
    assert len(iv.policy) == 1 and iv.policy[0].expr is None
    assert dict(zip(iv.types, iv.policy[0].shares)) == {"call": 0.15, "email": 0.45, "none": 0.40}
    default = next(s for s in load_spec(compose([])).stages if s.name == "interventions")
    assert len(default.policy) == 3                      # the default targets: two rows and the mix
