-- 0012_risk_decisions: one row per verdict the API served on POST /v1/risk/check (the decision
-- log: API → Kafka risk.decisions → archiver), and the decision id on verify_events.
--
-- risk_scores holds the scorer's later recomputation of an event; this table holds what riskflow
-- actually answered, at that moment, with the rules version, every rule hit (enforce, shadow,
-- tag and allow rules, parallel arrays as in risk_scores), the node and the check's latency.
-- decision_id is the `id` of the answer; a verify service that sends it back as decision_id in
-- its VerifyEvent joins the verdict to the attempt's outcome:
--   SELECT d.decision_id, d.score, e.outcome
--   FROM riskflow.risk_decisions AS d FINAL
--   ANY INNER JOIN (SELECT app_id, decision_id, outcome FROM riskflow.verify_events FINAL
--                   WHERE decision_id != '') AS e USING (app_id, decision_id)
--
-- The phone is stored only as phone_hash, phone_masked and phone_segment (see 0002_verify_events).
-- A re-delivered decision leaves one row per (app_id, decision_id) after merges (or with FINAL).

CREATE TABLE IF NOT EXISTS riskflow.risk_decisions
(
    decision_id   String          COMMENT 'id of the answer (the id field of /v1/risk/check)',
    ts            DateTime('UTC') COMMENT 'when the verdict was served',
    app_id        String          COMMENT 'tenant',
    flow          String          COMMENT 'one_click_login, number_verify, h5_quick_login, sms_fallback or empty',
    phone_hash    String          COMMENT 'keyed HMAC-SHA256 of the number, 64 hex digits',
    phone_masked  String          COMMENT 'masked number, 1381234****',
    phone_segment String          COMMENT 'number segment, first 7 digits',
    ip            String          COMMENT 'client IPv4 or IPv6 address',
    carrier       String          COMMENT 'CM, CU, CT or empty',
    platform      String          COMMENT 'android, ios, harmony, h5, web or empty',
    device_id     String          COMMENT 'device fingerprint',
    token_digest  String          COMMENT 'SHA-256 of the loginToken (hex) or empty',
    ex_id         String          COMMENT 'caller id, echoed back',
    score         UInt16          COMMENT '0 pass, 300 observe, 600 step-up, 900 block: what was answered',
    tags          Array(String)   COMMENT 'tags answered (enforce and tag rules)',
    detail        String          COMMENT 'JSON object answered: tag -> {score, reason}',
    hit_rules     Array(String)   COMMENT 'rule hits: rule name',
    hit_tags      Array(String)   COMMENT 'rule hits: tag',
    hit_scores    Array(UInt16)   COMMENT 'rule hits: score of the hit',
    hit_modes     Array(String)   COMMENT 'rule hits: enforce, shadow, tag or allow',
    hit_reasons   Array(String)   COMMENT 'rule hits: reason',
    rules_version String          COMMENT 'rule set that decided, see rule_versions',
    node          String          COMMENT 'API process that answered',
    latency_us    UInt32          COMMENT 'check latency in the API handler, microseconds',
    inserted_at   DateTime('UTC') DEFAULT now() COMMENT 'when the row was written; the latest write is kept'
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (app_id, decision_id)
SETTINGS index_granularity = 8192;

ALTER TABLE riskflow.verify_events ADD COLUMN decision_id String COMMENT 'id of the /v1/risk/check verdict the attempt followed, if the caller sent it' AFTER ex_id;
