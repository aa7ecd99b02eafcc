-- Replace the fairness rows of one (kind, snapshot, model version): delete them first.
DELETE FROM fairness
WHERE kind = :kind AND snapshot_date = :snapshot_date AND model_version = :model_version
