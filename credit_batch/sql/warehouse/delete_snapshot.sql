DELETE FROM features WHERE snapshot_date = :snapshot_date;
