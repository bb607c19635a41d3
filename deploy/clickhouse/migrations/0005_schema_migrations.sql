-- 0005_schema_migrations: which of these files `riskflow migrate` has applied.
--
-- The migrator records a file here after all its statements succeeded, and skips recorded
-- files on the next run. Files applied before this table exists (0001 to 0004 on a new
-- server) are recorded as soon as it does. Two migrators running at once may both record
-- a file; the table keeps one row per id after merges:
--   SELECT id, name, applied_at FROM riskflow.schema_migrations FINAL ORDER BY id

CREATE TABLE IF NOT EXISTS riskflow.schema_migrations
(
    id         UInt32          COMMENT 'number at the start of the file name',
    name       String          COMMENT 'file name without .sql',
    applied_at DateTime('UTC') COMMENT 'when the migrator applied it'
)
ENGINE = ReplacingMergeTree
ORDER BY id
SETTINGS index_granularity = 8192;
