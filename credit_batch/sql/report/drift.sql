SELECT feature, psi, band, rows_compared
FROM drift
WHERE snapshot_date = :snapshot_date AND model_version = :model_version
ORDER BY psi DESC
