-- 0007_risk_scores_hourly: verdicts per hour, app, flow, carrier and rules version, with the
-- score distribution.
--
-- The materialized view risk_scores_hourly_mv fills risk_scores_hourly from every INSERT into
-- risk_scores. Like 0006, every counter is a uniq state of event_id, so re-deliveries are not
-- counted twice; an event scored again under another rules_version counts once under each
-- version. score_0 + score_300 + score_600 + score_900 = events for one rules_version.
--   SELECT toDate(hour) AS day,
--          uniqMerge(events) AS events,
--          uniqIfMerge(score_600) + uniqIfMerge(score_900) AS stepped_up_or_blocked
--   FROM riskflow.risk_scores_hourly
--   WHERE hour >= today() - 7
--   GROUP BY day ORDER BY day
--
-- The view sees only rows inserted after it was created; see backfill/hourly.sql.

CREATE TABLE IF NOT EXISTS riskflow.risk_scores_hourly
(
    hour          DateTime('UTC')                          COMMENT 'start of the hour (UTC) of the events ts',
    app_id        String                                   COMMENT 'tenant',
    flow          String                                   COMMENT 'one_click_login, number_verify, h5_quick_login or sms_fallback',
    carrier       String                                   COMMENT 'CM, CU, CT or empty',
    rules_version String                                   COMMENT 'rule set that scored the events, see rule_versions',
    events        AggregateFunction(uniq, String)          COMMENT 'uniq state of event_id: scored events; read with uniqMerge',
    phones        AggregateFunction(uniq, String)          COMMENT 'uniq state of phone_hash: distinct numbers; read with uniqMerge',
    score_0       AggregateFunction(uniqIf, String, UInt8) COMMENT 'uniqIf state of event_id where score = 0 (pass); read with uniqIfMerge',
    score_300     AggregateFunction(uniqIf, String, UInt8) COMMENT 'uniqIf state of event_id where score = 300 (observe); read with uniqIfMerge',
    score_600     AggregateFunction(uniqIf, String, UInt8) COMMENT 'uniqIf state of event_id where score = 600 (step up); read with uniqIfMerge',
    score_900     AggregateFunction(uniqIf, String, UInt8) COMMENT 'uniqIf state of event_id where score = 900 (block); read with uniqIfMerge'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, app_id, flow, carrier, rules_version)
SETTINGS index_granularity = 8192;

CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow.risk_scores_hourly_mv
TO riskflow.risk_scores_hourly
AS SELECT
    toStartOfHour(ts)                   AS hour,
    app_id,
    flow,
    carrier,
    rules_version,
    uniqState(event_id)                 AS events,
    uniqState(phone_hash)               AS phones,
    uniqIfState(event_id, score = 0)    AS score_0,
    uniqIfState(event_id, score = 300)  AS score_300,
    uniqIfState(event_id, score = 600)  AS score_600,
    uniqIfState(event_id, score = 900)  AS score_900
FROM riskflow.risk_scores
GROUP BY hour, app_id, flow, carrier, rules_version;
