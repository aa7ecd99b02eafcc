SELECT model_name, segment, model_version,
       CASE WHEN status = 'candidate' AND gate_status = 'passed' THEN 'challenger'
            ELSE status END AS role,
       status, algorithm, train_until, training_rows, roc_auc, log_loss, ks,
       validation_date, gate_status, created_at, promoted_at, model_card
FROM model_registry
ORDER BY model_name, segment NULLS FIRST, created_at DESC
