-- What the online store holds, per feature set.
SELECT feature_set, COUNT(*) AS customers, MAX(snapshot_date) AS newest_snapshot,
       MAX(written_at) AS written_at
FROM online_features
GROUP BY feature_set
ORDER BY feature_set
