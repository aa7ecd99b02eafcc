-- Customers whose champion score rose most between the two newest snapshots their
-- model's champion scored (customers in both), with the model's name. One pass over
-- those slices grouped by model and customer (PostgreSQL walks the slices' keys):
-- no sort of the history.
WITH recent AS (
    SELECT model_name, model_version, snapshot_date,
           ROW_NUMBER() OVER (PARTITION BY model_name ORDER BY snapshot_date DESC) AS k
    FROM (
        SELECT DISTINCT m.model_name, r.model_version, r.snapshot_date
        FROM scoring_runs AS r
        JOIN champion_model AS m ON m.model_version = r.model_version
        WHERE r.status = 'loaded'
    ) AS scored
),
pairs AS (
    SELECT n.model_name, p.customer_id,
           MAX(p.snapshot_date) FILTER (WHERE n.k = 2) AS previous_snapshot,
           MAX(p.snapshot_date) FILTER (WHERE n.k = 1) AS snapshot_date,
           MAX(p.score) FILTER (WHERE n.k = 2) AS previous_score,
           MAX(p.score) FILTER (WHERE n.k = 1) AS score
    FROM predictions AS p
    JOIN recent AS n
      ON n.model_version = p.model_version AND n.snapshot_date = p.snapshot_date AND n.k <= 2
    GROUP BY n.model_name, p.customer_id
    HAVING COUNT(*) = 2
)
SELECT model_name, customer_id, previous_snapshot, snapshot_date,
       previous_score, score, score - previous_score AS change
FROM pairs
ORDER BY change DESC, model_name, customer_id
LIMIT 20;
