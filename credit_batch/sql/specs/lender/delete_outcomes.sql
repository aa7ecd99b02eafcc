DELETE FROM loan_outcomes WHERE month_end = :snapshot_date
