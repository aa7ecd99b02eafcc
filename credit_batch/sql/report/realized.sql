-- The model's realized performance on every snapshot measured so far (outcomes mature later).
SELECT snapshot_date, role, in_sample, rows_known, bad_rate, roc_auc, gini, ks, brier
FROM realized_performance
WHERE model_version = :model_version
ORDER BY snapshot_date
