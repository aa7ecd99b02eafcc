-- The risk bands of the same model's previous scored snapshot (for "what moved").
SELECT snapshot_date, risk_band, COUNT(*) AS customers, AVG(score) AS mean_score
FROM predictions
WHERE model_version = :model_version
  AND snapshot_date = (
      SELECT MAX(snapshot_date) FROM predictions
      WHERE model_version = :model_version AND snapshot_date < :snapshot_date
  )
GROUP BY snapshot_date, risk_band
ORDER BY risk_band
