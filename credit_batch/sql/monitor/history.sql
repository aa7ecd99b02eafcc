-- Realized performance of every measured slice, oldest snapshot first.
SELECT snapshot_date, model_version, role, in_sample, rows_known, bad_rate, mean_score, roc_auc, gini, ks,
       brier, computed_at
FROM realized_performance
ORDER BY model_version, snapshot_date
