-- Permutation importance (drop in ROC AUC when a feature is shuffled), per snapshot.
SELECT snapshot_date, model_version, importance_rank, feature,
       ROUND(CAST(importance_mean AS NUMERIC), 4) AS auc_drop,
       ROUND(CAST(importance_std AS NUMERIC), 4) AS auc_drop_std,
       sample_rows
FROM feature_importance
WHERE method = 'permutation'
ORDER BY snapshot_date DESC, model_version, importance_rank;
