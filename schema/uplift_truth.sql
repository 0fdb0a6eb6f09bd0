-- uplift_truth: per partner, the churn model's base probability and the declared
-- (noise-free) effect of every intervention type: the CATE ground truth. A type added
-- in YAML gets its effect_<type> column added by the loader.
CREATE TABLE IF NOT EXISTS uplift_truth (
    partner_id VARCHAR(50) PRIMARY KEY REFERENCES partners(partner_id),
    base_churn_probability DOUBLE PRECISION,
    effect_call DOUBLE PRECISION,
    effect_email DOUBLE PRECISION,
    effect_none DOUBLE PRECISION
);
