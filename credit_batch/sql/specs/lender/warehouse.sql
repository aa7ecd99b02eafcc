-- The example loan book (DuckDB and PostgreSQL alike; applied idempotently).
CREATE TABLE IF NOT EXISTS loan_book (
    month_end            DATE NOT NULL,
    account_no           VARCHAR NOT NULL,    -- "LN0100001"
    age                  INTEGER,
    income               DOUBLE PRECISION,
    credit_limit         DOUBLE PRECISION,
    balance              DOUBLE PRECISION,
    debt_to_income       DOUBLE PRECISION,
    months_on_book       INTEGER,
    inquiries_6m         INTEGER,
    missed_payments_12m  INTEGER,
    has_mortgage         BOOLEAN,
    employment           VARCHAR,
    housing              VARCHAR,
    loan_purpose         VARCHAR,
    region               VARCHAR,
    channel              VARCHAR,
    PRIMARY KEY (month_end, account_no)
);

CREATE TABLE IF NOT EXISTS loan_outcomes (
    month_end    DATE NOT NULL,
    account_no   VARCHAR NOT NULL,
    default_12m  SMALLINT NOT NULL CHECK (default_12m IN (0, 1)),
    PRIMARY KEY (month_end, account_no)
);
