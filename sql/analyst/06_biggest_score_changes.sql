-- Customers whose champion score rose most between their two newest snapshots.
WITH champion_scores AS (
    SELECT p.customer_id, p.snapshot_date, p.score,
           ROW_NUMBER() OVER (PARTITION BY p.customer_id ORDER BY p.snapshot_date DESC) AS rn
    FROM predictions AS p
    JOIN champion_model AS m ON m.model_version = p.model_version
)
SELECT new.customer_id, old.snapshot_date AS previous_snapshot, new.snapshot_date,
       old.score AS previous_score, new.score, new.score - old.score AS change
FROM champion_scores AS new
JOIN champion_scores AS old ON old.customer_id = new.customer_id AND old.rn = 2
WHERE new.rn = 1
ORDER BY change DESC
LIMIT 20;
