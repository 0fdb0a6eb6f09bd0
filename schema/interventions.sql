-- interventions: historical intervention outcomes (uplift_signal = realized effect).
CREATE TABLE IF NOT EXISTS interventions (
    intervention_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    partner_id VARCHAR(50) REFERENCES partners(partner_id),
    intervention_type VARCHAR(50),  -- call, email, none
    outcome VARCHAR(20),            -- Retained, Churned
    uplift_signal DECIMAL(5,3),     -- hidden ground truth
    intervention_date TIMESTAMP,
    outcome_recorded_at TIMESTAMP,
    outcome_probability DOUBLE PRECISION,  -- P(Churned) under the type received: the row's truth
    propensity DOUBLE PRECISION            -- the logging policy's probability of giving it that type
);
