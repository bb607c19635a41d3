-- 0003_risk_scores: one row per scored event: the verdict and every rule that matched.
--
-- Rule hits are stored as parallel arrays (element i of hit_rules, hit_tags, hit_scores,
-- hit_modes and hit_reasons describe the same hit), shadow hits included. One row per hit:
--   SELECT event_id, rule, tag, hit_score, mode
--   FROM riskflow.risk_scores FINAL
--   ARRAY JOIN hit_rules AS rule, hit_tags AS tag, hit_scores AS hit_score, hit_modes AS mode
--   WHERE ts >= today()
--
-- detail is the JSON object {"tag": {"score": 600, "reason": "..."}}; read it with
--   visitParamExtractUInt(visitParamExtractRaw(detail, 'ip_many_phones'), 'score')
--
-- The phone is stored only as phone_hash and phone_segment (see 0002_verify_events).
-- Re-scoring an event inserts a new row for the same (app_id, event_id); after merges
-- (or with FINAL) the row with the latest scored_at is kept.

CREATE TABLE IF NOT EXISTS riskflow.risk_scores
(
    event_id      String          COMMENT 'idempotency key, as in verify_events',
    ts            DateTime('UTC') COMMENT 'when the verification happened',
    app_id        String          COMMENT 'tenant',
    flow          String          COMMENT 'one_click_login, number_verify, h5_quick_login or sms_fallback',
    phone_hash    String          COMMENT 'keyed HMAC-SHA256 of the number, 64 hex digits',
    phone_segment String          COMMENT 'number segment, first 7 digits',
    ip            String          COMMENT 'client IPv4 or IPv6 address',
    carrier       String          COMMENT 'CM, CU, CT or empty',
    score         UInt16          COMMENT '0 pass, 300 observe, 600 step-up, 900 block',
    tags          Array(String)   COMMENT 'tags returned to the caller (enforced rules only)',
    detail        String          COMMENT 'JSON object: tag -> {score, reason}',
    hit_rules     Array(String)   COMMENT 'rule hits: rule name',
    hit_tags      Array(String)   COMMENT 'rule hits: tag',
    hit_scores    Array(UInt16)   COMMENT 'rule hits: score of the hit',
    hit_modes     Array(String)   COMMENT 'rule hits: enforce or shadow',
    hit_reasons   Array(String)   COMMENT 'rule hits: reason',
    shadow_tags   Array(String)   COMMENT 'tags of shadow hits; never counted in score',
    rules_version String          COMMENT 'rule set that scored the event, see rule_versions',
    scored_at     DateTime('UTC') COMMENT 'when the event was scored; the latest scoring is kept'
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (app_id, event_id)
SETTINGS index_granularity = 8192;
