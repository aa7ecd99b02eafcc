-- Every model with a champion (a segmented model: each segment's): its challengers, its champion's newest loaded run of a
-- snapshot at or before :as_of, and its newest realized ROC AUC out of sample.
WITH champions AS (
    SELECT model_name, segment_by, segment, model_version
    FROM model_registry WHERE status = 'champion'
), challengers AS (
    SELECT model_name, COALESCE(segment, '') AS segment, COUNT(*) AS challengers
    FROM model_registry
    WHERE status = 'candidate' AND gate_status = 'passed'
    GROUP BY model_name, COALESCE(segment, '')
), newest AS (
    SELECT model_version, snapshot_date, rows_in, rows_scored, rows_quarantined,
           score_psi, drift_status, finished_at,
           ROW_NUMBER() OVER (
               PARTITION BY model_version ORDER BY snapshot_date DESC, started_at DESC
           ) AS k
    FROM scoring_runs
    WHERE status = 'loaded' AND snapshot_date <= :as_of
), realized AS (
    SELECT model_version, snapshot_date, roc_auc,
           ROW_NUMBER() OVER (PARTITION BY model_version ORDER BY snapshot_date DESC) AS k
    FROM realized_performance
    WHERE in_sample IS NOT TRUE AND snapshot_date <= :as_of
), fair AS (  -- the lowest adverse impact ratio of each night's slice (fairness attributes)
    SELECT model_version, snapshot_date, MIN(air) AS min_air
    FROM fairness WHERE kind = 'night' AND NOT is_reference
    GROUP BY model_version, snapshot_date
)
SELECT CASE WHEN c.segment_by IS NULL THEN c.model_name
            ELSE c.model_name || '/' || COALESCE(c.segment, '*') END AS model_name,
       c.model_version, COALESCE(h.challengers, 0) AS challengers,
       n.snapshot_date, n.rows_in, n.rows_scored, n.rows_quarantined, n.score_psi,
       n.drift_status, n.finished_at, q.roc_auc AS realized_auc,
       q.snapshot_date AS realized_snapshot, f.min_air
FROM champions AS c
LEFT JOIN challengers AS h
    ON h.model_name = c.model_name AND h.segment = COALESCE(c.segment, '')
LEFT JOIN newest AS n ON n.model_version = c.model_version AND n.k = 1
LEFT JOIN realized AS q ON q.model_version = c.model_version AND q.k = 1
LEFT JOIN fair AS f ON f.model_version = c.model_version AND f.snapshot_date = n.snapshot_date
ORDER BY c.model_name, c.segment NULLS FIRST
