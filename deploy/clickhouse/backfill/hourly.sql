-- hourly: fill the hourly views (migrations 0006 to 0008, their SELECTs as of 0015) from the events
-- stored before the views were created.
--
-- A materialized view only sees rows inserted after it exists. These statements aggregate the
-- history of verify_events and risk_scores into the views' tables the same way the views do.
-- Every counter of those tables is a uniq state, and uniq states merge as sets, so running this
-- file again, or while the views are receiving new rows, counts nothing twice.
--
--   clickhouse-client --multiquery < deploy/clickhouse/backfill/hourly.sql
--
-- Hours filled before migration 0015 hold states of event_id alone; this file's states are of
-- app_id and event_id, so over such hours it would count every event twice: delete those hours
-- first (see migrations/0015_hourly_events_per_app.sql).
--
-- On a large history, run it one month at a time to bound memory: add
--   WHERE ts >= '2024-05-01 00:00:00' AND ts < '2024-06-01 00:00:00'
-- before each GROUP BY.

INSERT INTO riskflow.verify_events_hourly
    (hour, app_id, flow, carrier, outcome, error_code, events, phones, ips, devices)
SELECT
    toStartOfHour(ts)                       AS hour,
    app_id,
    flow,
    carrier,
    outcome,
    error_code,
    uniqState(concat(app_id, '\0', event_id))    AS events,
    uniqState(phone_hash)                        AS phones,
    uniqState(ip)                                AS ips,
    uniqIfState(device_id, device_id != '')      AS devices
FROM riskflow.verify_events
GROUP BY hour, app_id, flow, carrier, outcome, error_code;

INSERT INTO riskflow.risk_scores_hourly
    (hour, app_id, flow, carrier, rules_version, events, phones, score_0, score_300, score_600, score_900)
SELECT
    toStartOfHour(ts)                   AS hour,
    app_id,
    flow,
    carrier,
    rules_version,
    uniqState(concat(app_id, '\0', event_id))                AS events,
    uniqState(phone_hash)                                    AS phones,
    uniqIfState(concat(app_id, '\0', event_id), score = 0)   AS score_0,
    uniqIfState(concat(app_id, '\0', event_id), score = 300) AS score_300,
    uniqIfState(concat(app_id, '\0', event_id), score = 600) AS score_600,
    uniqIfState(concat(app_id, '\0', event_id), score = 900) AS score_900
FROM riskflow.risk_scores
GROUP BY hour, app_id, flow, carrier, rules_version;

INSERT INTO riskflow.rule_hits_hourly
    (hour, app_id, flow, carrier, rule, tag, mode, events, phones)
SELECT
    toStartOfHour(ts)     AS hour,
    app_id,
    flow,
    carrier,
    rule,
    tag,
    mode,
    uniqState(concat(app_id, '\0', event_id))  AS events,
    uniqState(phone_hash)                      AS phones
FROM riskflow.risk_scores
ARRAY JOIN hit_rules AS rule, hit_tags AS tag, hit_modes AS mode
GROUP BY hour, app_id, flow, carrier, rule, tag, mode;
