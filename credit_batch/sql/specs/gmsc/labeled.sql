-- Features joined to known outcomes, for snapshots in [:date_from, :date_to].
-- Used for training (a range of snapshots) and for permutation importance
-- (one snapshot: date_from = date_to).
SELECT
    f.snapshot_date,
    f.customer_id,
    f.revolving_unsecured_line_utilization,
    f.age,
    f.num_30_59_days_late,
    f.debt_ratio,
    f.monthly_income,
    f.num_open_credit_loans,
    f.num_90_days_late,
    f.num_real_estate_loans,
    f.num_60_89_days_late,
    f.num_dependents,
    CAST(CASE WHEN f.debt_ratio > 1 THEN 1 ELSE 0 END AS DOUBLE PRECISION) AS high_debt_ratio,
    CAST(CASE WHEN f.monthly_income IS NULL THEN 1 ELSE 0 END AS DOUBLE PRECISION)
        AS missing_monthly_income,
    CAST(CASE WHEN f.num_dependents IS NULL THEN 1 ELSE 0 END AS DOUBLE PRECISION)
        AS missing_num_dependents,
    CAST(o.delinquency AS BIGINT) AS delinquency
FROM features AS f
JOIN outcomes AS o
  ON o.snapshot_date = f.snapshot_date AND o.customer_id = f.customer_id
WHERE f.snapshot_date BETWEEN :date_from AND :date_to
ORDER BY f.snapshot_date, f.customer_id
