SELECT COUNT(*) AS n_rows FROM features WHERE snapshot_date = :snapshot_date
