-- 0017_rule_loads: the audit trail of rule packs, one row per load of a pack: every promotion
-- (PUT /v1/rules, the console), every rollback, and the first load of a version a node found
-- (its pack file at start, or changed). rule_versions keeps one row per version, its latest load,
-- so a version promoted again or rolled back to loses there who loaded it before and when; here
-- every load stays.
--
-- What ran when, and who put it there:
--   SELECT loaded_at, version, loaded_by, source FROM riskflow.rule_loads FINAL ORDER BY loaded_at
--
-- A load recorded twice (a retry after a timeout the server had in fact answered) collapses: the
-- key is the whole load.

CREATE TABLE IF NOT EXISTS riskflow.rule_loads
(
    loaded_at  DateTime('UTC') COMMENT 'when the pack was loaded',
    version    String          COMMENT 'content hash of the pack (rule_versions.version)',
    name       String          COMMENT 'rule pack name',
    loaded_by  String          COMMENT 'who or what loaded it, with the node',
    source     String          COMMENT 'api, console, rollback, or the pack file path',
    rule_count UInt32          COMMENT 'number of rules in the pack'
)
ENGINE = ReplacingMergeTree
ORDER BY (loaded_at, version, loaded_by, source)
SETTINGS index_granularity = 8192;
