-- One generated month of events, replaced whole: the events of the 30 days up to
-- the snapshot :snapshot_date (00:00).
DELETE FROM events
WHERE event_at > CAST(:snapshot_date AS TIMESTAMP) - INTERVAL '30 days'
  AND event_at <= CAST(:snapshot_date AS TIMESTAMP)
