-- 0004_rule_versions: every rule set that was loaded, one row per version after merges.
--
-- version is the content hash that risk_scores.rules_version refers to:
--   SELECT s.rules_version, v.name, v.source, count() AS events
--   FROM riskflow.risk_scores AS s FINAL
--   ANY LEFT JOIN (SELECT version AS rules_version, name, source FROM riskflow.rule_versions FINAL) AS v
--   USING rules_version
--   GROUP BY s.rules_version, v.name, v.source
--
-- The table is small and not partitioned, so a version loaded again on another day still
-- collapses into one row (the latest load is kept).

CREATE TABLE IF NOT EXISTS riskflow.rule_versions
(
    version    String          COMMENT 'content hash of the rule set',
    name       String          COMMENT 'rule pack name',
    loaded_at  DateTime('UTC') COMMENT 'when it was loaded; the latest load is kept',
    loaded_by  String          COMMENT 'who or what loaded it',
    source     String          COMMENT 'file path, or api',
    rule_count UInt32          COMMENT 'number of rules in the set',
    content    String          COMMENT 'the rule set as loaded'
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY version
SETTINGS index_granularity = 8192;
