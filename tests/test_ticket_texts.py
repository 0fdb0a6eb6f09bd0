"""Ticket texts composed from phrase banks per topic and tone (issue: Realism, 6): many
distinct texts, the tone and the topic drawn from the partner's state, VADER as before."""
from __future__ import annotations

import pytest

from conftest import refusal
from simulator.histories import tickets
from simulator.load import load_spec


@pytest.fixture(scope="module")
def joined(default_run):
    t = default_run.parquet("support_tickets").assign(partner_id=lambda d: d["partner_id"].astype(str))
    p = default_run.parquet("partners")[["partner_id", "churn_path", "payment_delay_flag"]]
    return t.merge(p, on="partner_id")


def test_at_least_300_distinct_texts_per_10k_tickets(joined):
    texts = joined["text"].astype(str)
    per_10k = texts.nunique() * 10_000 / len(texts)
    assert per_10k >= 300, (texts.nunique(), len(texts))


def test_tone_and_topic_follow_the_partners_state(joined):
    """Active_Churn's road writes angry texts (its frustration is 1), and a partner whose
    latest payout was late writes mostly about payouts (weight 5 of 9.3 against 1 of 5.3:
    about 54% against 19%; thousands of tickets each, so a gap of 20 points is far beyond
    4 standard errors)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    texts = joined["text"].astype(str)
    score = {t: max(0.0, -vader.polarity_scores(t)["compound"]) for t in texts.unique()}
    neg = texts.map(score)
    road = joined["churn_path"].astype(str)
    assert neg[road == "Active_Churn"].min() > 0.6 and neg[road == "Active_Churn"].mean() > 0.8
    assert neg[road == "steady"].mean() < 0.3
    payout = texts.str.contains("payout|payment", case=False)
    late = joined["payment_delay_flag"].astype(bool)
    assert payout[late].mean() > payout[~late].mean() + 0.2


def test_every_text_is_an_opening_a_body_and_a_closing_of_the_declared_banks(compose):
    spec = load_spec(compose([]))
    h = next(h for s in spec.stages if getattr(s, "histories", None) for h in s.histories if h.kind == "tickets")
    opening, body, closing = h.options["phrases"]
    texts = tickets.templates(h)
    assert len(texts) == len(set(texts)) == sum(
        len(opening[j]) * len(body[t][j]) * len(closing[j]) for t in range(len(body)) for j in range(len(opening)))
    first = texts[0]
    assert first == f"{opening[0][0]} {body[0][0][0]} {closing[0][0]}"


@pytest.mark.parametrize("override, fragment", [
    ("~activity.histories.tickets.phrases.closing.positive",
     "activity.histories.tickets.phrases.closing: must map each tone (angry, annoyed, neutral, positive, in that order)"),
    ("~activity.histories.tickets.phrases.body.tier",
     "activity.histories.tickets.phrases.body: must map each topic (payout, commission, tracking, dashboard, tier, assets"),
    ("activity.histories.tickets.phrases.opening.angry=[]",
     "activity.histories.tickets.phrases.opening.angry: must be a non-empty list of phrases"),
    ("activity.histories.tickets.phrases.opening.angry=[Hi,Hi]",
     "activity.histories.tickets.phrases.opening.angry: phrases must be distinct"),
    ("+activity.histories.tickets.phrases.signature={angry: [x]}",
     "activity.histories.tickets.phrases.signature: unknown part of a text (parts: opening, body, closing)"),
    ("activity.histories.tickets.topics.payout='nosuch * 2'",
     "activity.histories.tickets.topics.payout: unknown column 'nosuch'"),
    ("activity.histories.tickets.topics.payout='region + 1'",
     "activity.histories.tickets.topics.payout: arithmetic needs numbers, got the category column 'region'"),
])
def test_wrong_phrase_banks_are_refused_with_their_path(compose, override, fragment):
    assert fragment in refusal(compose, override)


@pytest.mark.parametrize("overrides, fragment", [
    (["activity.histories.tickets.topics.payout='-1'"],
     "activity.histories.tickets: topics.payout: must be a weight >= 0 for every partner, got -1"),
    (["activity.histories.tickets.topics.payout='1 / (tenure_months - tenure_months)'"],
     "activity.histories.tickets: topics.payout: must be a weight >= 0 for every partner, got inf"),
    ([f"activity.histories.tickets.tones.{t}=0" for t in ("angry", "annoyed", "neutral", "positive")],
     "activity.histories.tickets: tones: every weight is 0 for"),
])
def test_weights_no_partner_can_use_are_refused_before_anything_is_written(tmp_path, overrides, fragment):
    """A weight is an expression of each partner's state, so it is checked on the data: a
    negative, infinite or all-zero one exits 2 with its path (it used to pick the last
    label for everyone, or fail the world's invariants after generating it)."""
    from conftest import run_cli

    proc = run_cli(*overrides, "n_partners=2000", "db=none", out_dir=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "partners.csv").exists()
