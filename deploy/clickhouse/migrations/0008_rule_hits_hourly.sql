-- 0008_rule_hits_hourly: rule hits per hour, app, flow, carrier, rule, tag and mode (enforce or
-- shadow), from the hit_* arrays of risk_scores.
--
-- The materialized view rule_hits_hourly_mv ARRAY JOINs the parallel hit arrays of every row
-- inserted into risk_scores, one row per hit. events is a uniq state of event_id, so an event
-- that two rules of one tag matched counts once for that tag when the rules are merged:
--   SELECT tag, uniqMerge(events) AS events
--   FROM riskflow.rule_hits_hourly
--   WHERE mode = 'enforce' AND hour >= now() - INTERVAL 1 DAY
--   GROUP BY tag ORDER BY events DESC
--
-- Hit rates divide by the events of risk_scores_hourly over the same hours and apps.
-- The view sees only rows inserted after it was created; see backfill/hourly.sql.

CREATE TABLE IF NOT EXISTS riskflow.rule_hits_hourly
(
    hour    DateTime('UTC')                 COMMENT 'start of the hour (UTC) of the events ts',
    app_id  String                          COMMENT 'tenant',
    flow    String                          COMMENT 'one_click_login, number_verify, h5_quick_login or sms_fallback',
    carrier String                          COMMENT 'CM, CU, CT or empty',
    rule    String                          COMMENT 'rule id (risk_scores.hit_rules)',
    tag     String                          COMMENT 'tag of the rule (risk_scores.hit_tags)',
    mode    String                          COMMENT 'enforce or shadow (risk_scores.hit_modes)',
    events  AggregateFunction(uniq, String) COMMENT 'uniq state of event_id: events the rule matched; read with uniqMerge',
    phones  AggregateFunction(uniq, String) COMMENT 'uniq state of phone_hash: distinct numbers the rule matched; read with uniqMerge'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, app_id, flow, carrier, rule, tag, mode)
SETTINGS index_granularity = 8192;

CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow.rule_hits_hourly_mv
TO riskflow.rule_hits_hourly
AS SELECT
    toStartOfHour(ts)     AS hour,
    app_id,
    flow,
    carrier,
    rule,
    tag,
    mode,
    uniqState(event_id)   AS events,
    uniqState(phone_hash) AS phones
FROM riskflow.risk_scores
ARRAY JOIN hit_rules AS rule, hit_tags AS tag, hit_modes AS mode
GROUP BY hour, app_id, flow, carrier, rule, tag, mode;
