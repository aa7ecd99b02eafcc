-- The streaming example's event history (beside the GMSC tables): one row per
-- payment or card event. Runs unchanged on DuckDB and PostgreSQL.
CREATE TABLE IF NOT EXISTS events (
    event_id     VARCHAR          NOT NULL,   -- unique (the generator's)
    customer_id  BIGINT           NOT NULL,
    kind         VARCHAR          NOT NULL,   -- payment | card
    event_at     TIMESTAMP        NOT NULL,   -- UTC
    missed       INTEGER,                     -- payment: 1 when missed
    amount       DOUBLE PRECISION             -- payment or card amount
);
CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, event_at);
