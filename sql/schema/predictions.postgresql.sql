-- One score per (snapshot, customer, model version); the primary key enforces it.
CREATE TABLE IF NOT EXISTS predictions (
    snapshot_date  DATE NOT NULL,
    customer_id    BIGINT NOT NULL,
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    score          DOUBLE PRECISION NOT NULL,  -- P(serious delinquency in 2 years)
    risk_band      VARCHAR NOT NULL,
    PRIMARY KEY (snapshot_date, customer_id, model_version)
);
