-- Adverse-action reasons (credit_batch.steps.adverse_action): for each customer a
-- model version declined (scored above its policy's cutoff), the principal reasons
-- for the notice: at most four, ranked by contribution towards decline, each with
-- the version's reason text and the value that led to it. Written by the load with
-- the slice's predictions, in the same transaction. One table per key type held,
-- as predictions (credit_batch.stores.results.KEY_SUFFIX).
CREATE TABLE IF NOT EXISTS adverse_action (
    snapshot_date  DATE NOT NULL,
    customer_id    {key_type} NOT NULL,   -- as predictions.customer_id
    model_version  VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    cutoff         DOUBLE PRECISION NOT NULL,  -- declined: score > cutoff
    reason_rank    INTEGER NOT NULL,           -- 1 = the principal reason
    feature        VARCHAR NOT NULL,
    reason_text    VARCHAR NOT NULL,
    contribution   DOUBLE PRECISION NOT NULL,  -- towards default, log-odds (SHAP), > 0
    value          DOUBLE PRECISION,           -- a number's value scored; NULL: missing
    category       VARCHAR                     -- a categorical feature's level scored
);
