-- Views for analysts; recreated on every schema apply.

-- The champion model (at most one row).
CREATE OR REPLACE VIEW champion_model AS
SELECT model_version, algorithm, train_until, roc_auc, log_loss, ks, promoted_at
FROM model_registry
WHERE status = 'champion';

-- Each customer's newest score from the champion model.
CREATE OR REPLACE VIEW latest_predictions AS
SELECT snapshot_date, customer_id, model_version, run_id, score, risk_band
FROM (
    SELECT p.*,
           ROW_NUMBER() OVER (PARTITION BY p.customer_id ORDER BY p.snapshot_date DESC) AS rn
    FROM predictions AS p
    JOIN model_registry AS m
      ON m.model_version = p.model_version AND m.status = 'champion'
) AS ranked
WHERE rn = 1;
