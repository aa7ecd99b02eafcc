-- The newest snapshot at or before :as_of (the nightly run's date).
SELECT MAX(snapshot_date) AS snapshot_date FROM features WHERE snapshot_date <= :as_of
