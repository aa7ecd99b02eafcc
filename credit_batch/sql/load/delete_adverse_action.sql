-- Replace a (snapshot, model version) slice of adverse_action: delete it first.
DELETE FROM adverse_action
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
