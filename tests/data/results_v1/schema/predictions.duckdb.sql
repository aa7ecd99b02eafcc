-- One score per (snapshot, customer, model version).
-- No PRIMARY KEY here: DuckDB's ART index made replacing a 2M-row slice 13x
-- slower (4.8 s instead of 0.36 s, benchmarks/score_and_load.py). Uniqueness is
-- enforced by the load instead: it replaces the whole (snapshot, model) slice
-- and, in the same transaction, refuses to commit unless rows = distinct
-- customers = rows scored (credit_batch.results._reconcile).
CREATE TABLE IF NOT EXISTS predictions (
    snapshot_date  DATE NOT NULL,
    customer_id    {key_type} NOT NULL,  -- BIGINT, or VARCHAR (string keys); fixed when created
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    score          DOUBLE NOT NULL,  -- P(serious delinquency in 2 years)
    risk_band      VARCHAR NOT NULL,
    points         DOUBLE,  -- scorecard points (scoring_runs.points_*: the scale)
    -- reason codes: the features that push the score most towards default, with
    -- their SHAP contributions (log-odds); NULL where fewer features push it up
    reason_1       VARCHAR,
    reason_1_value DOUBLE,
    reason_2       VARCHAR,
    reason_2_value DOUBLE,
    reason_3       VARCHAR,
    reason_3_value DOUBLE
);
