DELETE FROM outcomes WHERE snapshot_date = :snapshot_date;
