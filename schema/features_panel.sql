-- features_panel: partners_engineered at every snapshot: one row per partner per snapshot
-- date it is active at, its 18 features as of that date and churn_label (churn in the 90
-- days after it). partners_engineered is its last snapshot.
-- Every feature may be null: a young partner's change is not measured, and the warehouse
-- faults (faults.missing) lose values; the labels never are.
CREATE TABLE IF NOT EXISTS features_panel (
    partner_id VARCHAR(50) NOT NULL REFERENCES partners(partner_id),
    snapshot_date TIMESTAMP NOT NULL,
    -- engagement
    login_count_30d INTEGER,
    login_trend_30d DECIMAL(6,3),
    days_since_last_interaction INTEGER,
    dashboard_usage_score DECIMAL(4,3),
    asset_download_count_30d INTEGER,
    -- performance
    revenue_velocity DECIMAL(10,2),  -- null: fewer than 3 live months (a young partner's, not measured)
    conversion_rate_wow DECIMAL(5,4),  -- null: fewer than 2 live weeks (a young partner's, not measured)
    traffic_quality_score DECIMAL(4,3),
    commission_trend_90d DECIMAL(6,3),  -- null: fewer than 30 live days (a young partner's, not measured)
    -- trust / friction
    payment_delay_flag BOOLEAN,
    unresolved_ticket_count INTEGER,
    negative_sentiment_score DECIMAL(3,2),
    -- network (masters only)
    subnetwork_avg_health_score DECIMAL(5,2),
    subnetwork_recent_churn_count INTEGER,
    -- tier risk
    tier_proximity_score DECIMAL(5,4),
    tenure_months INTEGER,
    -- financial
    avg_commission_3m DECIMAL(10,2),
    commission_volatility DECIMAL(10,2),  -- null: fewer than 2 live months (a young partner's, not measured)
    -- labels
    is_master_affiliate BOOLEAN NOT NULL,
    churn_label BOOLEAN NOT NULL,
    churn_scenario VARCHAR(50) NOT NULL,
    PRIMARY KEY (partner_id, snapshot_date)
);
