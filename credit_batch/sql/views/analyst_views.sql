-- Views for analysts; recreated on every schema apply.

-- Each model's champion (one row per model). New columns go last: PostgreSQL's
-- CREATE OR REPLACE VIEW may add columns at the end only.
CREATE OR REPLACE VIEW champion_model AS
SELECT model_version, algorithm, train_until, roc_auc, log_loss, ks, promoted_at, model_name
FROM model_registry
WHERE status = 'champion';

-- The views of predictions: views/keyed_views.sql (one set per key type held).

-- Which version was each model's (and segment's) champion, and when: one row per
-- promotion, from the audit trail. A champion is replaced only by promoting another
-- version of the same model and segment, so its tenure ends at the next promotion
-- (champion_until NULL: champion now). The champion on day D:
--   WHERE champion_from < D + 1 day AND (champion_until IS NULL OR champion_until >= D + 1 day)
CREATE OR REPLACE VIEW champion_history AS
SELECT
    p.model_name,
    p.segment,
    p.model_version,
    p.event_at AS champion_from,
    LEAD(p.event_at) OVER (
        PARTITION BY p.model_name, p.segment ORDER BY p.event_at, p.event_id
    ) AS champion_until,
    p.actor AS promoted_by,
    p.reason
FROM (
    SELECT e.event_id, e.event_at, e.actor, e.reason, e.model_version,
           COALESCE(e.model_name, r.model_name) AS model_name, r.segment
    FROM model_events AS e
    JOIN model_registry AS r ON r.model_version = e.model_version
    WHERE e.event = 'promoted'
) AS p;
