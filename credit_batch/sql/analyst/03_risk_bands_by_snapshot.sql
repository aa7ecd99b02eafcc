-- How the book spreads over risk bands, per snapshot and model.
SELECT snapshot_date, model_version, risk_band,
       COUNT(*) AS customers,
       ROUND(CAST(AVG(score) AS NUMERIC), 4) AS mean_score
FROM predictions
GROUP BY snapshot_date, model_version, risk_band
ORDER BY snapshot_date, model_version, risk_band;
