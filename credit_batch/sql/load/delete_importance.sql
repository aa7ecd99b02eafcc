DELETE FROM feature_importance
WHERE snapshot_date = :snapshot_date AND model_version = :model_version AND method = :method
