-- Registered models and their held-out metrics; the champion scores the nightly run.
SELECT model_version, status, algorithm, train_from, train_until, training_rows,
       ROUND(CAST(roc_auc AS NUMERIC), 4) AS roc_auc,
       ROUND(CAST(log_loss AS NUMERIC), 4) AS log_loss,
       ROUND(CAST(ks AS NUMERIC), 4) AS ks,
       created_at, promoted_at
FROM model_registry
ORDER BY created_at DESC;
