-- 0006_verify_events_hourly: verification traffic per hour, app, flow, carrier, outcome and error code.
--
-- The materialized view verify_events_hourly_mv fills the table verify_events_hourly from every
-- INSERT into verify_events. The counters are uniq states, so a re-delivered event (same
-- event_id, inserted again) is not counted twice, and merging or re-inserting a state is
-- harmless. Read them with the -Merge functions and GROUP BY, never with plain SELECT *:
--   SELECT hour, carrier, uniqMerge(events) AS events, uniqMerge(phones) AS phones
--   FROM riskflow.verify_events_hourly
--   WHERE hour >= now() - INTERVAL 1 DAY
--   GROUP BY hour, carrier ORDER BY hour, carrier
--
-- uniq is exact up to tens of thousands of values per group and within about 1 % above; use
-- verify_events FINAL with uniqExact when an exact figure matters.
--
-- The view sees only rows inserted after it was created. To fill the table from older history
-- run deploy/clickhouse/backfill/hourly.sql (safe to run again, and safe while the view is live).

CREATE TABLE IF NOT EXISTS riskflow.verify_events_hourly
(
    hour       DateTime('UTC')                        COMMENT 'start of the hour (UTC) of the events ts',
    app_id     String                                 COMMENT 'tenant',
    flow       String                                 COMMENT 'one_click_login, number_verify, h5_quick_login or sms_fallback',
    carrier    String                                 COMMENT 'CM, CU, CT or empty',
    outcome    String                                 COMMENT 'success or fail',
    error_code String                                 COMMENT 'SDK or carrier code on failure, empty on success',
    events     AggregateFunction(uniq, String)        COMMENT 'uniq state of event_id: verifications; read with uniqMerge',
    phones     AggregateFunction(uniq, String)        COMMENT 'uniq state of phone_hash: distinct numbers; read with uniqMerge',
    ips        AggregateFunction(uniq, String)        COMMENT 'uniq state of ip: distinct client addresses; read with uniqMerge',
    devices    AggregateFunction(uniqIf, String, UInt8) COMMENT 'uniqIf state of device_id (non-empty only): distinct devices; read with uniqIfMerge'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, app_id, flow, carrier, outcome, error_code)
SETTINGS index_granularity = 8192;

CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow.verify_events_hourly_mv
TO riskflow.verify_events_hourly
AS SELECT
    toStartOfHour(ts)                       AS hour,
    app_id,
    flow,
    carrier,
    outcome,
    error_code,
    uniqState(event_id)                     AS events,
    uniqState(phone_hash)                   AS phones,
    uniqState(ip)                           AS ips,
    uniqIfState(device_id, device_id != '') AS devices
FROM riskflow.verify_events
GROUP BY hour, app_id, flow, carrier, outcome, error_code;
