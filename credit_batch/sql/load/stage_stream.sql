-- A micro-batch's scores before they are inserted once (load/insert_stream.sql).
CREATE TEMPORARY TABLE stream_staged AS SELECT * FROM stream_predictions WHERE false
