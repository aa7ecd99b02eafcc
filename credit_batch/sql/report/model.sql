SELECT model_version, algorithm, status, train_from, train_until, training_rows,
       roc_auc, log_loss, ks, sha256, created_at, promoted_at, policy
FROM model_registry WHERE model_version = :model_version
