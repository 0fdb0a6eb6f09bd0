-- partners: one row per partner (the seed's columns, plus the simulator's ground truth).
CREATE TABLE IF NOT EXISTS partners (
    partner_id VARCHAR(50) PRIMARY KEY,
    region VARCHAR(50),
    payment_rail_type VARCHAR(50),
    is_master_affiliate BOOLEAN,
    tier VARCHAR(20),
    tenure_months INTEGER,
    created_at TIMESTAMP DEFAULT NOW(),
    avg_commission_3m DECIMAL(10,2),
    tier_proximity_score DECIMAL(5,4),       -- distance above the tier's threshold
    commission_volatility DECIMAL(10,2),     -- std of monthly commissions

    -- Engagement metrics (last 30 days)
    login_count_30d INTEGER,
    days_since_last_interaction INTEGER,
    dashboard_usage_score DECIMAL(4,3),
    asset_download_count_30d INTEGER,

    -- Performance
    traffic_quality_score DECIMAL(4,3),

    -- Trust/Friction
    payment_delay_flag BOOLEAN,
    unresolved_ticket_count INTEGER,
    negative_sentiment_score DECIMAL(3,2),

    -- Velocity (the seed's DECIMAL(5,2) for the login slope would round its third decimal)
    login_trend_30d DECIMAL(6,3),
    revenue_velocity DECIMAL(10,2),
    commission_trend_90d DECIMAL(6,3),
    conversion_rate_wow DECIMAL(5,4),

    -- Ground truth
    churn_label BOOLEAN,
    churned_at TIMESTAMP,                    -- when a churner left (NULL otherwise)
    reactivated_at TIMESTAMP,                -- when a churner came back (faults.reactivations; NULL otherwise)
    churn_scenario VARCHAR(50),
    churn_path VARCHAR(50),                  -- the latent road at the feature date (README "Signals that carry risk")
    true_churn_probability DOUBLE PRECISION, -- the oracle: P(churn in the label window | latent state, decisions),
                                             -- NULL for those who left before the feature date

    -- Network (masters only)
    subnetwork_avg_health_score DECIMAL(5,2),
    subnetwork_recent_churn_count INTEGER
);

CREATE INDEX IF NOT EXISTS idx_partners_churn ON partners(churn_label);
CREATE INDEX IF NOT EXISTS idx_partners_region ON partners(region);
