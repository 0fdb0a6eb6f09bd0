-- decision_truth: one row per decision of the logging policy (the interventions rows, in
-- the same order), with its exact truth: P(Churned in its outcome window | the state at
-- the decision, do(type)) - the same under do(none), noise and clips integrated out. A
-- type added in YAML gets its effect_<type> column added by the loader.
CREATE TABLE IF NOT EXISTS decision_truth (
    intervention_id UUID PRIMARY KEY REFERENCES interventions(intervention_id),
    partner_id VARCHAR(50) REFERENCES partners(partner_id),
    decision_date TIMESTAMP,
    intervention_type VARCHAR(50),
    base_churn_probability DOUBLE PRECISION,
    effect_call DOUBLE PRECISION,
    effect_email DOUBLE PRECISION,
    effect_none DOUBLE PRECISION
);
