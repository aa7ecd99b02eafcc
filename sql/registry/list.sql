SELECT model_version, status, algorithm, train_until, training_rows, roc_auc, log_loss, ks,
       created_at, promoted_at
FROM model_registry
ORDER BY created_at DESC
