DELETE FROM calibration
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
