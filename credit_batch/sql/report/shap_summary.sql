SELECT feature, importance_rank, mean_abs_shap, rows_explained
FROM shap_summary
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
ORDER BY importance_rank
