-- uplift_truth: per partner of the cohort, the exact truth of its first decision: P(Churned
-- | do(none)) and every intervention type's effect, noise and clips integrated out (the
-- CATE ground truth), beside the treatment-effect table's declared effect before them. A
-- type added in YAML gets its effect_<type> and declared_effect_<type> columns added by
-- the loader.
CREATE TABLE IF NOT EXISTS uplift_truth (
    partner_id VARCHAR(50) PRIMARY KEY REFERENCES partners(partner_id),
    base_churn_probability DOUBLE PRECISION,
    effect_call DOUBLE PRECISION,
    effect_email DOUBLE PRECISION,
    effect_none DOUBLE PRECISION,
    declared_effect_call DOUBLE PRECISION,   -- the first matching row of the type's effect table
    declared_effect_email DOUBLE PRECISION,
    declared_effect_none DOUBLE PRECISION
);
