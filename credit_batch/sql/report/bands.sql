SELECT risk_band, COUNT(*) AS customers, AVG(score) AS mean_score
FROM predictions
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
GROUP BY risk_band ORDER BY risk_band
