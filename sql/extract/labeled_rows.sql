SELECT COUNT(*) AS n_rows FROM outcomes WHERE snapshot_date = :snapshot_date
