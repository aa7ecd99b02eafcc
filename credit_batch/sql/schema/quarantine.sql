-- Rows that broke a rule of the feature spec: not scored, kept with the reason. One
-- table per key type held, as predictions (credit_batch.stores.results.KEY_SUFFIX).
CREATE TABLE IF NOT EXISTS quarantine (
    snapshot_date     DATE NOT NULL,
    customer_id       {key_type} NOT NULL,  -- as predictions.customer_id
    model_version     VARCHAR NOT NULL,
    run_id            VARCHAR NOT NULL,
    reason            VARCHAR NOT NULL,     -- "column: check; ..."
    offending_values  VARCHAR NOT NULL      -- JSON: {"column": value, ...}
);
