-- One month-end of the loan book, in the spec's order; binds :snapshot_date.
-- The key and snapshot columns are aliased to the pipeline's customer_id and
-- snapshot_date. No ORDER BY: the extract finds repeated keys with a query of
-- its own, and a sort of the whole snapshot would only cost time.
SELECT
    month_end AS snapshot_date,
    account_no AS customer_id,
    CAST(age AS DOUBLE PRECISION) AS age,
    CAST(income AS DOUBLE PRECISION) AS income,
    CAST(credit_limit AS DOUBLE PRECISION) AS credit_limit,
    CAST(balance / NULLIF(credit_limit, 0) AS DOUBLE PRECISION) AS utilization,
    CAST(debt_to_income AS DOUBLE PRECISION) AS debt_to_income,
    CAST(months_on_book AS DOUBLE PRECISION) AS months_on_book,
    CAST(inquiries_6m AS DOUBLE PRECISION) AS inquiries_6m,
    CAST(missed_payments_12m AS DOUBLE PRECISION) AS missed_payments_12m,
    CAST(CAST(has_mortgage AS INTEGER) AS DOUBLE PRECISION) AS has_mortgage,
    CAST(balance AS DOUBLE PRECISION) AS balance,
    employment,
    housing,
    loan_purpose,
    region,
    channel
FROM loan_book
WHERE month_end = :snapshot_date
