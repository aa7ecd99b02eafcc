-- Demo warehouse: one row per customer per monthly snapshot.
-- Runs unchanged on DuckDB and PostgreSQL; applied idempotently.
CREATE TABLE IF NOT EXISTS features (
    snapshot_date                         DATE    NOT NULL,
    customer_id                           BIGINT  NOT NULL,
    revolving_unsecured_line_utilization  DOUBLE PRECISION,
    age                                   DOUBLE PRECISION,
    num_30_59_days_late                   DOUBLE PRECISION,
    debt_ratio                            DOUBLE PRECISION,
    monthly_income                        DOUBLE PRECISION,
    num_open_credit_loans                 DOUBLE PRECISION,
    num_90_days_late                      DOUBLE PRECISION,
    num_real_estate_loans                 DOUBLE PRECISION,
    num_60_89_days_late                   DOUBLE PRECISION,
    num_dependents                        DOUBLE PRECISION,
    -- for fair-lending tests only (the spec's [[fairness]]), never a model input:
    -- a synthetic protected-class proxy of the demo
    demo_group                            VARCHAR,
    PRIMARY KEY (snapshot_date, customer_id)
);
-- A warehouse written before the column existed gets it (NULL for its rows).
ALTER TABLE features ADD COLUMN IF NOT EXISTS demo_group VARCHAR;

-- Serious delinquency (90+ days past due within two years) of a customer
-- observed at a snapshot; known only once enough time has passed.
CREATE TABLE IF NOT EXISTS outcomes (
    snapshot_date  DATE     NOT NULL,
    customer_id    BIGINT   NOT NULL,
    delinquency    SMALLINT NOT NULL CHECK (delinquency IN (0, 1)),
    PRIMARY KEY (snapshot_date, customer_id)
);
