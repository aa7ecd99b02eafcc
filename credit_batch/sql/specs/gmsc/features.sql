-- The night's batch features for one snapshot, in the feature spec's order.
-- Bound parameter: :snapshot_date. Derived flags are computed here, so the
-- model and every consumer of the lake see the same columns. No ORDER BY: the
-- extract finds repeated ids with a query of its own (a sort of 20M rows cost
-- 3.5 s of a 8.3 s extract).
SELECT
    snapshot_date,
    customer_id,
    revolving_unsecured_line_utilization,
    age,
    num_30_59_days_late,
    debt_ratio,
    monthly_income,
    num_open_credit_loans,
    num_90_days_late,
    num_real_estate_loans,
    num_60_89_days_late,
    num_dependents,
    CAST(CASE WHEN debt_ratio > 1 THEN 1 ELSE 0 END AS DOUBLE PRECISION) AS high_debt_ratio,
    CAST(CASE WHEN monthly_income IS NULL THEN 1 ELSE 0 END AS DOUBLE PRECISION)
        AS missing_monthly_income,
    CAST(CASE WHEN num_dependents IS NULL THEN 1 ELSE 0 END AS DOUBLE PRECISION)
        AS missing_num_dependents
FROM features
WHERE snapshot_date = :snapshot_date
