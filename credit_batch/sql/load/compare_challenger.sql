-- A challenger's scores against the champion's, customer by customer, on one snapshot.
WITH pair AS (
    SELECT a.score AS champion_score, b.score AS challenger_score,
           a.risk_band AS champion_band, b.risk_band AS challenger_band
    FROM predictions AS a
    JOIN predictions AS b
      ON b.snapshot_date = a.snapshot_date AND b.customer_id = a.customer_id
    WHERE a.snapshot_date = :snapshot_date AND a.model_version = :champion_version
      AND b.model_version = :challenger_version
)
SELECT 'correlation' AS kind, 'pearson' AS bucket, count(*) AS customers,
       corr(champion_score, challenger_score) AS value
FROM pair
UNION ALL
SELECT 'migration', champion_band || '>' || challenger_band, count(*),
       CAST(NULL AS DOUBLE PRECISION)
FROM pair
GROUP BY champion_band, challenger_band
UNION ALL
SELECT 'swap', 'champion only', count(*), CAST(NULL AS DOUBLE PRECISION)
FROM pair
WHERE champion_score <= :swap_cutoff AND challenger_score > :swap_cutoff
UNION ALL
SELECT 'swap', 'challenger only', count(*), CAST(NULL AS DOUBLE PRECISION)
FROM pair
WHERE champion_score > :swap_cutoff AND challenger_score <= :swap_cutoff
