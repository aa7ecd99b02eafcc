DELETE FROM challenger_comparison
WHERE snapshot_date = :snapshot_date AND champion_version = :champion_version
  AND challenger_version = :challenger_version
