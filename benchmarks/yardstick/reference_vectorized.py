# Copied from /work/shared/bench/reference_vectorized.py (the team's shared yardstick, read-only there) so that
# benchmarks/ runs from the repository alone; keep it byte-for-byte the original below this
# header, so that its figures stay comparable with the shared ones. YARDSTICKS=DIR still
# points the benchmarks at another copy.
"""Vectorized 'good engineering' reference for the same three tables.

Same columns, distributions and rules as seed_reference.py, but every step is a
whole-array numpy/pandas operation on a numpy Generator (no per-row Python):
  * partners: one draw per column (size=n); conditional velocity features via
    loc/scale arrays; scenario priority rules via np.select
  * network tree: one permutation of the non-masters cut into consecutive
    blocks of 10-50 (same law as repeated sample-without-replacement + drop)
  * network features: np.bincount over the master index
  * interventions: np.repeat of the partner index, treatment-effect table via
    np.select, binomial outcomes in one call
Writes partners/interventions/network_relationships as CSV and Parquet.

usage: python vectorized_floor.py N OUTDIR [--seed S] [--csv-engine pandas|pyarrow]
                                           [--formats csv,parquet]
"""
import argparse
import os
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REGIONS = ['Brazil', 'EU', 'UK', 'Nigeria', 'SE_Asia', 'APAC']
PAYMENT_RAILS = ['P2P', 'Crypto', 'Bank', 'Agent']
TIERS = ['Bronze', 'Silver', 'Gold', 'Platinum']
TIER_WEIGHTS = [0.50, 0.30, 0.15, 0.05]
SCENARIO_NAMES = ['Healthy', 'Trust_Erosion', 'Network_Contagion',
                  'Tier_Cliff_Anxiety', 'Active_Churn', 'Passive_Disengagement']

PARTNER_COLUMNS = [  # same order as seed_reference.py's partners.csv
    'partner_id', 'region', 'payment_rail_type', 'is_master_affiliate', 'tier',
    'tenure_months', 'avg_commission_3m', 'commission_volatility', 'login_count_30d',
    'days_since_last_interaction', 'dashboard_usage_score', 'asset_download_count_30d',
    'traffic_quality_score', 'payment_delay_flag', 'unresolved_ticket_count',
    'negative_sentiment_score', 'tier_proximity_score', 'created_at', 'churn_label',
    'login_trend_30d', 'revenue_velocity', 'commission_trend_90d', 'conversion_rate_wow',
    'churn_scenario', 'subnetwork_avg_health_score', 'subnetwork_recent_churn_count']

GOLDEN_RECORDS = [
    {'partner_id': 'P00001', 'tier': 'Platinum', 'avg_commission_3m': 5100.0,
     'tier_proximity_score': 0.02, 'login_trend_30d': -0.4, 'churn_label': True},
    {'partner_id': 'P00002', 'payment_delay_flag': True, 'days_since_last_interaction': 18,
     'unresolved_ticket_count': 3, 'negative_sentiment_score': 0.85, 'churn_label': True},
    {'partner_id': 'P00003', 'is_master_affiliate': True, 'subnetwork_recent_churn_count': 4,
     'subnetwork_avg_health_score': 0.35, 'churn_label': True},
    {'partner_id': 'P00004', 'region': 'Brazil', 'payment_rail_type': 'P2P',
     'payment_delay_flag': True, 'churn_label': True},
    {'partner_id': 'P00005', 'tier': 'Gold', 'login_trend_30d': 0.2,
     'payment_delay_flag': False, 'churn_label': False},
]


def generate_partners(rng, n, now):
    c = {}
    ids = np.char.add('P', np.arange(10000, 10000 + n).astype(str))
    ids[:len(GOLDEN_RECORDS)] = [g['partner_id'] for g in GOLDEN_RECORDS][:n]
    c['partner_id'] = ids
    c['region'] = pd.Categorical.from_codes(rng.integers(0, len(REGIONS), n), REGIONS)
    c['payment_rail_type'] = pd.Categorical.from_codes(
        rng.integers(0, len(PAYMENT_RAILS), n), PAYMENT_RAILS)
    c['is_master_affiliate'] = rng.random(n) < 0.05
    c['tier'] = pd.Categorical.from_codes(rng.choice(4, size=n, p=TIER_WEIGHTS), TIERS)
    c['tenure_months'] = rng.exponential(12, n).astype(np.int64)
    avg_comm = np.round(np.minimum(rng.pareto(1.16, n) * 1000, 50000), 2)
    c['avg_commission_3m'] = avg_comm
    c['commission_volatility'] = np.round(avg_comm * rng.uniform(0.05, 0.6, n), 2)
    c['login_count_30d'] = np.maximum(0, rng.normal(15, 8, n).astype(np.int64))
    c['days_since_last_interaction'] = np.maximum(0, rng.exponential(5, n).astype(np.int64))
    c['dashboard_usage_score'] = np.round(rng.beta(2, 2, n), 3)
    c['asset_download_count_30d'] = rng.poisson(4, n)
    c['traffic_quality_score'] = np.round(rng.beta(5, 2, n), 3)
    c['payment_delay_flag'] = rng.random(n) < 0.10
    c['unresolved_ticket_count'] = rng.poisson(0.5, n)
    c['negative_sentiment_score'] = np.round(rng.beta(2, 5, n), 2)
    c['tier_proximity_score'] = np.round(rng.uniform(0, 1, n), 4)
    c['created_at'] = np.full(n, np.datetime64(now, 'us'))

    # churn score (same additive rule as the seed reference)
    pdf, days = c['payment_delay_flag'], c['days_since_last_interaction']
    score = (0.25 * (c['tier_proximity_score'] < 0.05)
             + np.where(pdf & (days > 14), 0.30, np.where(pdf, 0.10, 0.0))
             + 0.15 * (c['login_count_30d'] < 5)
             + 0.10 * (days > 10)
             + 0.15 * c['negative_sentiment_score']
             + 0.05 * np.minimum(c['unresolved_ticket_count'], 3)
             + 0.05 * (c['tenure_months'] < 3)
             + rng.uniform(0, 0.65, n))
    label = np.minimum(score, 1.0) > 0.65
    c['churn_label'] = label

    # velocity features conditional on the label
    def cond_normal(loc_c, sc_c, loc_h, sc_h, dec):
        return np.round(rng.normal(np.where(label, loc_c, loc_h),
                                   np.where(label, sc_c, sc_h)), dec)
    c['login_trend_30d'] = cond_normal(-0.15, 0.25, 0.05, 0.2, 3)
    c['revenue_velocity'] = cond_normal(-80, 40, 10, 30, 2)
    c['commission_trend_90d'] = cond_normal(-0.08, 0.12, 0.02, 0.08, 3)
    c['conversion_rate_wow'] = cond_normal(-0.03, 0.02, 0.01, 0.015, 4)
    return pd.DataFrame(c)


def generate_network(rng, df, now):
    is_master = df['is_master_affiliate'].to_numpy()
    master_idx = np.flatnonzero(is_master)
    pool = rng.permutation(np.flatnonzero(~is_master))
    wanted = rng.integers(10, 51, master_idx.size)
    ends = np.minimum(np.cumsum(wanted), pool.size)
    counts = np.diff(ends, prepend=0)
    subs = pool[:ends[-1] if ends.size else 0]
    masters_rep = np.repeat(master_idx, counts)
    ids = df['partner_id'].to_numpy()
    days = rng.integers(30, 366, subs.size)
    net = pd.DataFrame({
        'master_affiliate_id': ids[masters_rep],
        'sub_affiliate_id': ids[subs],
        'recruited_at': np.datetime64(now, 'us') - days.astype('timedelta64[D]'),
        'is_active': np.ones(subs.size, dtype=bool),
    })
    return net, masters_rep, subs


def add_network_features(df, masters_rep, subs):
    n = len(df)
    label = df['churn_label'].to_numpy()
    n_subs = np.bincount(masters_rep, minlength=n)
    n_churned = np.bincount(masters_rep, weights=label[subs], minlength=n)
    # created_at == generation time for every partner, so "recent" == all churned subs
    is_master = df['is_master_affiliate'].to_numpy()
    with np.errstate(invalid='ignore', divide='ignore'):
        health = np.where(n_subs > 0, np.round((1 - n_churned / n_subs) * 100, 2), 100.0)
    df['subnetwork_avg_health_score'] = np.where(is_master, health, np.nan)
    df['subnetwork_recent_churn_count'] = np.where(is_master, n_churned, np.nan)
    return df


def apply_golden_records(df):
    for i, rec in enumerate(GOLDEN_RECORDS[:len(df)]):
        for k, v in rec.items():
            df.at[i, k] = v
    return df


def assign_scenarios(df):
    label = df['churn_label'].to_numpy()
    conds = [
        ~label,
        df['payment_delay_flag'].to_numpy() & (df['days_since_last_interaction'].to_numpy() > 14),
        df['is_master_affiliate'].to_numpy()
        & (np.nan_to_num(df['subnetwork_recent_churn_count'].to_numpy(), nan=0) > 2),
        df['tier_proximity_score'].to_numpy() < 0.05,
        df['negative_sentiment_score'].to_numpy() > 0.7,
    ]
    codes = np.select(conds, [0, 1, 2, 3, 4], default=5)
    df['churn_scenario'] = pd.Categorical.from_codes(codes, SCENARIO_NAMES)
    return df


def generate_interventions(rng, df, now):
    n = len(df)
    k = rng.integers(1, 4, n)
    pidx = np.repeat(np.arange(n), k)
    m = pidx.size
    itype = rng.choice(3, size=m, p=[0.15, 0.45, 0.40])  # 0 call, 1 email, 2 none

    comm = df['avg_commission_3m'].to_numpy()[pidx]
    delay = df['payment_delay_flag'].to_numpy()[pidx]
    master = df['is_master_affiliate'].to_numpy()[pidx]
    trend = df['login_trend_30d'].to_numpy()[pidx]
    tickets = df['unresolved_ticket_count'].to_numpy()[pidx]
    prox = df['tier_proximity_score'].to_numpy()[pidx]
    label = df['churn_label'].to_numpy()[pidx]
    sent = df['negative_sentiment_score'].to_numpy()[pidx]

    call_eff = np.select([comm > 10000, delay, master], [-0.30, -0.25, -0.28], -0.10)
    email_eff = np.select([(trend > -0.5) & (trend < 0), tickets > 0, prox < 0.1],
                          [-0.15, -0.12, -0.18], -0.05)
    effect = np.select([itype == 0, itype == 1], [call_eff, email_eff], 0.0)
    effect = np.clip(effect + rng.normal(0, 0.08, m), -0.5, 0.2)

    base = (np.where(label, 0.60, 0.10) + 0.05 * delay + 0.05 * (prox < 0.05) + 0.10 * sent)
    base = np.clip(base, 0.0, 1.0)
    final = np.clip(base + effect, 0, 1)
    churned = rng.binomial(1, final).astype(bool)

    date = np.datetime64(now, 'us') - rng.integers(30, 91, m).astype('timedelta64[D]')
    return pd.DataFrame({
        'partner_id': df['partner_id'].to_numpy()[pidx],
        'intervention_type': pd.Categorical.from_codes(itype, ['call', 'email', 'none']),
        'outcome': pd.Categorical.from_codes(churned.astype(np.int8), ['Retained', 'Churned']),
        'uplift_signal': effect,
        'intervention_date': date,
        'outcome_recorded_at': date + np.timedelta64(30, 'D'),
    })


def write(df, outdir, name, formats, csv_engine):
    if 'csv' in formats:
        path = os.path.join(outdir, name + '.csv')
        if csv_engine == 'pyarrow':
            pacsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), path)
        else:
            df.to_csv(path, index=False)
    if 'parquet' in formats:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                       os.path.join(outdir, name + '.parquet'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('n', type=int)
    ap.add_argument('outdir')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--csv-engine', choices=['pandas', 'pyarrow'], default='pandas')
    ap.add_argument('--formats', default='csv,parquet')
    a = ap.parse_args()
    formats = set(a.formats.split(','))
    os.makedirs(a.outdir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    now = datetime.now()

    partners = generate_partners(rng, a.n, now)
    network, masters_rep, subs = generate_network(rng, partners, now)
    partners = add_network_features(partners, masters_rep, subs)
    partners = apply_golden_records(partners)
    partners = assign_scenarios(partners)
    partners = partners[PARTNER_COLUMNS]
    interventions = generate_interventions(rng, partners, now)

    write(partners, a.outdir, 'partners', formats, a.csv_engine)
    write(interventions, a.outdir, 'interventions', formats, a.csv_engine)
    write(network, a.outdir, 'network_relationships', formats, a.csv_engine)


if __name__ == '__main__':
    main()
