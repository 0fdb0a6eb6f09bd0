-- Creates every table in dependency order (parents before children). The docker image
-- runs the files of /docker-entrypoint-initdb.d in name order, so this one comes first;
-- the others run again after it and change nothing (IF NOT EXISTS). The simulator's
-- loader applies the same files in the same order.
\ir partners.sql
\ir network_relationships.sql
\ir interventions.sql
\ir predictions.sql
\ir uplift_truth.sql
\ir decision_truth.sql
\ir snapshot_truth.sql
\ir partners_engineered.sql
\ir features_panel.sql
