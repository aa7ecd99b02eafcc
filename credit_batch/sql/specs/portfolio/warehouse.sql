-- The example portfolio (`credit-batch demo --example portfolio`): one book of accounts
-- of three products in four countries, a view per product that its model's spec reads
-- (DuckDB and PostgreSQL alike; applied idempotently).
CREATE TABLE IF NOT EXISTS portfolio_book (
    month_end            DATE NOT NULL,
    account_no           VARCHAR NOT NULL,    -- "CD0000001", "LN...", "MG...": the product's
    product              VARCHAR NOT NULL,    -- cards | loans | mortgages
    country              VARCHAR NOT NULL,    -- uk | ie | fr | de
    age                  INTEGER,
    income               DOUBLE PRECISION,
    credit_limit         DOUBLE PRECISION,
    balance              DOUBLE PRECISION,
    debt_to_income       DOUBLE PRECISION,
    months_on_book       INTEGER,
    inquiries_6m         INTEGER,
    missed_payments_12m  INTEGER,
    PRIMARY KEY (month_end, account_no)
);

CREATE TABLE IF NOT EXISTS portfolio_outcomes (
    month_end    DATE NOT NULL,
    account_no   VARCHAR NOT NULL,
    default_12m  SMALLINT NOT NULL CHECK (default_12m IN (0, 1)),
    PRIMARY KEY (month_end, account_no)
);

CREATE OR REPLACE VIEW cards_book AS
SELECT *, balance / NULLIF(credit_limit, 0) AS utilization
FROM portfolio_book WHERE product = 'cards';

CREATE OR REPLACE VIEW loans_book AS
SELECT * FROM portfolio_book WHERE product = 'loans';

CREATE OR REPLACE VIEW mortgages_book AS
SELECT * FROM portfolio_book WHERE product = 'mortgages';

-- Card accounts in arrears (a payment missed in the last 12 months): what the
-- collections model (collections_cards.toml) reads, beside the cards PD score.
CREATE OR REPLACE VIEW cards_arrears_book AS
SELECT *, balance / NULLIF(credit_limit, 0) AS utilization
FROM portfolio_book WHERE product = 'cards' AND missed_payments_12m >= 1;
