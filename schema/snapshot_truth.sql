-- snapshot_truth: one row per partner per snapshot it is active at (features_panel's rows),
-- with the truth of its label (churn in the label window after the snapshot):
--   churn_probability_before_decisions: before the window's decisions: the world's states
--     through the window as they moved, the logging policy's decisions and their noise
--     integrated out (the oracle at the snapshot's date);
--   churn_probability_on_path: knowing the decisions given too (the partners table's
--     true_churn_probability at the last snapshot).
CREATE TABLE IF NOT EXISTS snapshot_truth (
    partner_id VARCHAR(50) REFERENCES partners(partner_id),
    snapshot_date TIMESTAMP,
    churn_probability_before_decisions DOUBLE PRECISION,
    churn_probability_on_path DOUBLE PRECISION,
    PRIMARY KEY (partner_id, snapshot_date)
);
