-- 0009_backtest_runs: one row per `riskflow backtest` run: a candidate rule pack replayed against
-- stored events next to the current pack (scoring/backtest).
--
-- The transition matrix and the per-rule differences are stored twice: as JSON with example
-- event ids (what the report printed), and as parallel arrays that SQL can ARRAY JOIN on
-- ClickHouse 18.16, which cannot take JSON arrays apart:
--   SELECT run_id, from_score, to_score, n
--   FROM riskflow.backtest_runs FINAL
--   ARRAY JOIN transition_from AS from_score, transition_to AS to_score, transition_count AS n
--   WHERE from_score != to_score
--   ORDER BY started_at DESC, n DESC
--
-- Precision and recall are NULL when the run had no labels (labeled = 0) or when the ratio is
-- undefined (nothing flagged, or no labeled attack). Writing a run again keeps one row per
-- run_id after merges (the latest finished_at).

CREATE TABLE IF NOT EXISTS riskflow.backtest_runs
(
    run_id              String                  COMMENT 'id of the run, printed in its report',
    started_at          DateTime('UTC')         COMMENT 'when the run started',
    finished_at         DateTime('UTC')         COMMENT 'when the run finished; the latest write is kept',
    from_ts             DateTime('UTC')         COMMENT 'start of the replayed period (inclusive)',
    to_ts               DateTime('UTC')         COMMENT 'end of the replayed period (exclusive)',
    current_name        String                  COMMENT 'name of the pack in force',
    current_version     String                  COMMENT 'version (content hash) of the pack in force',
    candidate_name      String                  COMMENT 'name of the candidate pack',
    candidate_version   String                  COMMENT 'version (content hash) of the candidate pack',
    events              UInt64                  COMMENT 'events scored by both packs and compared',
    warmup_events       UInt64                  COMMENT 'events before from_ts that only fed the feature windows',
    skipped_events      UInt64                  COMMENT 'stored events that could not be replayed',
    changed_events      UInt64                  COMMENT 'events whose score differs between the packs',
    events_per_sec      Float64                 COMMENT 'throughput of the run: events read and scored by both packs per second',
    transition_from     Array(UInt16)           COMMENT 'transition matrix: score under the current pack',
    transition_to       Array(UInt16)           COMMENT 'transition matrix: score under the candidate pack',
    transition_count    Array(UInt64)           COMMENT 'transition matrix: events that went from transition_from to transition_to',
    transitions         String                  COMMENT 'transition matrix as JSON, with example event ids',
    rule_ids            Array(String)           COMMENT 'rule differences: rule id (every rule that matched under either pack)',
    rule_current_hits   Array(UInt64)           COMMENT 'rule differences: events the rule matched under the current pack',
    rule_candidate_hits Array(UInt64)           COMMENT 'rule differences: events the rule matched under the candidate pack',
    rule_gained         Array(UInt64)           COMMENT 'rule differences: events only the candidate pack matched',
    rule_lost           Array(UInt64)           COMMENT 'rule differences: events only the current pack matched',
    rule_diffs          String                  COMMENT 'rule differences as JSON, with modes and example event ids',
    flag_at             UInt16                  COMMENT 'score at or above which an event counts as flagged for precision and recall',
    labeled             UInt64                  COMMENT 'replayed events that had a label (0: no labels given)',
    current_precision   Nullable(Float64)       COMMENT 'current pack: flagged attacks / flagged labeled events',
    current_recall      Nullable(Float64)       COMMENT 'current pack: flagged attacks / labeled attacks',
    candidate_precision Nullable(Float64)       COMMENT 'candidate pack: flagged attacks / flagged labeled events',
    candidate_recall    Nullable(Float64)       COMMENT 'candidate pack: flagged attacks / labeled attacks',
    report              String                  COMMENT 'the whole report as JSON'
)
ENGINE = ReplacingMergeTree(finished_at)
PARTITION BY toYYYYMM(started_at)
ORDER BY run_id
SETTINGS index_granularity = 8192;
