-- Snapshot dates in the warehouse with their row counts, newest first.
SELECT snapshot_date, COUNT(*) AS n_rows
FROM features
GROUP BY snapshot_date
ORDER BY snapshot_date DESC
