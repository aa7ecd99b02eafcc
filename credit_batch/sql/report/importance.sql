SELECT method, metric, feature, importance_rank, importance_mean, importance_std, sample_rows
FROM feature_importance
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
ORDER BY method, importance_rank
