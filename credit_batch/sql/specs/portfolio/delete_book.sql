DELETE FROM portfolio_book WHERE month_end = :snapshot_date
