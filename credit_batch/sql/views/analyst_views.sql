-- Views for analysts; recreated on every schema apply.

-- Each model's champion (one row per model). New columns go last: PostgreSQL's
-- CREATE OR REPLACE VIEW may add columns at the end only.
CREATE OR REPLACE VIEW champion_model AS
SELECT model_version, algorithm, train_until, roc_auc, log_loss, ks, promoted_at, model_name
FROM model_registry
WHERE status = 'champion';

-- The views of predictions: views/keyed_views.sql (one set per key type held).
