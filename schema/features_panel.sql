-- features_panel: partners_engineered at every snapshot: one row per partner per snapshot
-- date it is active at, its 18 features as of that date and churn_label (churn in the 90
-- days after it). partners_engineered is its last snapshot.
CREATE TABLE IF NOT EXISTS features_panel (
    partner_id VARCHAR(50) NOT NULL REFERENCES partners(partner_id),
    snapshot_date TIMESTAMP NOT NULL,
    -- engagement
    login_count_30d INTEGER NOT NULL,
    login_trend_30d DECIMAL(6,3) NOT NULL,
    days_since_last_interaction INTEGER NOT NULL,
    dashboard_usage_score DECIMAL(4,3) NOT NULL,
    asset_download_count_30d INTEGER NOT NULL,
    -- performance
    revenue_velocity DECIMAL(10,2),  -- null: fewer than 3 live months (a young partner's, not measured)
    conversion_rate_wow DECIMAL(5,4),  -- null: fewer than 2 live weeks (a young partner's, not measured)
    traffic_quality_score DECIMAL(4,3) NOT NULL,
    commission_trend_90d DECIMAL(6,3),  -- null: fewer than 30 live days (a young partner's, not measured)
    -- trust / friction
    payment_delay_flag BOOLEAN NOT NULL,
    unresolved_ticket_count INTEGER NOT NULL,
    negative_sentiment_score DECIMAL(3,2) NOT NULL,
    -- network (masters only)
    subnetwork_avg_health_score DECIMAL(5,2),
    subnetwork_recent_churn_count INTEGER,
    -- tier risk
    tier_proximity_score DECIMAL(5,4) NOT NULL,
    tenure_months INTEGER NOT NULL,
    -- financial
    avg_commission_3m DECIMAL(10,2) NOT NULL,
    commission_volatility DECIMAL(10,2),  -- null: fewer than 2 live months (a young partner's, not measured)
    -- labels
    is_master_affiliate BOOLEAN NOT NULL,
    churn_label BOOLEAN NOT NULL,
    churn_scenario VARCHAR(50) NOT NULL,
    PRIMARY KEY (partner_id, snapshot_date)
);
