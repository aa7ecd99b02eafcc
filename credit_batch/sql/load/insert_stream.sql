-- Each event's score once: a redelivered event (a consumer died before XACK) inserts nothing.
INSERT INTO stream_predictions SELECT * FROM stream_staged ON CONFLICT (event_id) DO NOTHING
