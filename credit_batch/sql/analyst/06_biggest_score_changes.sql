-- Customers whose champion score rose most between the two newest snapshots the
-- champion scored (customers in both). One pass over those two slices grouped
-- by customer (PostgreSQL walks its customer index): no sort of the history.
WITH recent AS (
    SELECT snapshot_date, ROW_NUMBER() OVER (ORDER BY snapshot_date DESC) AS k
    FROM (
        SELECT DISTINCT r.snapshot_date
        FROM scoring_runs AS r
        JOIN champion_model AS m ON m.model_version = r.model_version
        WHERE r.status = 'loaded'
    ) AS scored
),
newest AS (SELECT snapshot_date FROM recent WHERE k = 1),
previous AS (SELECT snapshot_date FROM recent WHERE k = 2),
pairs AS (
    SELECT p.customer_id,
           MAX(p.score) FILTER (WHERE p.snapshot_date = (SELECT snapshot_date FROM previous))
               AS previous_score,
           MAX(p.score) FILTER (WHERE p.snapshot_date = (SELECT snapshot_date FROM newest))
               AS score
    FROM predictions AS p
    WHERE p.model_version = (SELECT model_version FROM champion_model)
      AND p.snapshot_date IN ((SELECT snapshot_date FROM previous),
                              (SELECT snapshot_date FROM newest))
    GROUP BY p.customer_id
    HAVING COUNT(*) = 2
)
SELECT customer_id,
       (SELECT snapshot_date FROM previous) AS previous_snapshot,
       (SELECT snapshot_date FROM newest) AS snapshot_date,
       previous_score, score, score - previous_score AS change
FROM pairs
ORDER BY change DESC
LIMIT 20;
