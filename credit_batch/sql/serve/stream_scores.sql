-- The stored stream scores of the events of a micro-batch (what the output stream carries).
SELECT * FROM stream_predictions WHERE event_id IN (SELECT event_id FROM stream_staged)
