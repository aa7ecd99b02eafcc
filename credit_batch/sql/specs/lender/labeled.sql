-- The loan book joined to matured outcomes for month-ends in [:date_from, :date_to].
SELECT
    b.month_end AS snapshot_date,
    b.account_no AS customer_id,
    CAST(b.age AS DOUBLE PRECISION) AS age,
    CAST(b.income AS DOUBLE PRECISION) AS income,
    CAST(b.credit_limit AS DOUBLE PRECISION) AS credit_limit,
    CAST(b.balance / NULLIF(b.credit_limit, 0) AS DOUBLE PRECISION) AS utilization,
    CAST(b.debt_to_income AS DOUBLE PRECISION) AS debt_to_income,
    CAST(b.months_on_book AS DOUBLE PRECISION) AS months_on_book,
    CAST(b.inquiries_6m AS DOUBLE PRECISION) AS inquiries_6m,
    CAST(b.missed_payments_12m AS DOUBLE PRECISION) AS missed_payments_12m,
    CAST(CAST(b.has_mortgage AS INTEGER) AS DOUBLE PRECISION) AS has_mortgage,
    CAST(b.balance AS DOUBLE PRECISION) AS balance,
    b.employment,
    b.housing,
    b.loan_purpose,
    b.region,
    b.channel,
    CAST(o.default_12m AS BIGINT) AS default_12m
FROM loan_book AS b
JOIN loan_outcomes AS o ON o.account_no = b.account_no AND o.month_end = b.month_end
WHERE b.month_end BETWEEN :date_from AND :date_to
ORDER BY b.month_end, b.account_no
