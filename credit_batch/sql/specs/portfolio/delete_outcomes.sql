DELETE FROM portfolio_outcomes WHERE month_end = :snapshot_date
