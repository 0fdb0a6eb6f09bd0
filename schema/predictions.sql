-- predictions: the learning loop (empty until a model writes to it).
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    partner_id VARCHAR(50) REFERENCES partners(partner_id),
    churn_probability DECIMAL(5,4),
    top_churn_factors JSONB,
    recommended_intervention VARCHAR(50),
    uplift_score DECIMAL(5,3),
    predicted_at TIMESTAMP DEFAULT NOW(),

    -- Outcome fields (populated T+30)
    actual_intervention VARCHAR(50),
    actual_outcome VARCHAR(20),
    outcome_recorded_at TIMESTAMP,

    model_version VARCHAR(20)
);

CREATE INDEX IF NOT EXISTS idx_predictions_partner ON predictions(partner_id);
