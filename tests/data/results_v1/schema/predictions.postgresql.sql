-- One score per (snapshot, customer, model version); the primary key enforces it.
-- {key_type}: BIGINT, or VARCHAR for a database of string keys (fixed when created).
CREATE TABLE IF NOT EXISTS predictions (
    snapshot_date  DATE NOT NULL,
    customer_id    {key_type} NOT NULL,
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    score          DOUBLE PRECISION NOT NULL,  -- P(serious delinquency in 2 years)
    risk_band      VARCHAR NOT NULL,
    points         DOUBLE PRECISION,  -- scorecard points (scoring_runs.points_*: the scale)
    -- reason codes: the features that push the score most towards default, with
    -- their SHAP contributions (log-odds); NULL where fewer features push it up
    reason_1       VARCHAR,
    reason_1_value DOUBLE PRECISION,
    reason_2       VARCHAR,
    reason_2_value DOUBLE PRECISION,
    reason_3       VARCHAR,
    reason_3_value DOUBLE PRECISION,
    PRIMARY KEY (snapshot_date, customer_id, model_version)
);

-- A customer's scores (lookups, history): without it every lookup reads the table.
-- Checked in the catalog first: CREATE INDEX (even IF NOT EXISTS) takes a SHARE lock
-- on the table, so a writer applying the schema would queue behind a running load.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_indexes
        WHERE schemaname = current_schema() AND indexname = 'predictions_customer_idx'
    ) THEN
        CREATE INDEX predictions_customer_idx ON predictions (customer_id, snapshot_date);
    END IF;
END
$$;
