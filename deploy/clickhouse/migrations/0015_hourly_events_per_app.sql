-- 0015_hourly_events_per_app: the hourly views count an event as its app and id together, so
-- totals merged across apps are exact when two apps use the same event ids.
--
-- event_id is unique within an app only (the tables are keyed by app_id and event_id). The views
-- of 0006 to 0008 kept uniq states of event_id alone, so a query merging apps — per hour, per
-- carrier, per rule over every app, as most dashboards do — counted two apps' events with one
-- id once: apps that number their attempts 1, 2, 3 … each hour were counted as one app. The
-- views are created again with uniqState(concat(app_id, '\0', event_id)) for every event
-- counter (NUL cannot occur in an app id); the tables and their columns stay as they are, and
-- every query reads them as before.
--
-- Rows written before this migration keep their states: hours before it count across apps as
-- before, and an event written before it and again after it (a re-delivery in that hour) counts
-- twice there. To recount such hours exactly, delete them and fill them again from the event
-- tables with backfill/hourly.sql restricted to them. With X the start of the hour after the one
-- the migration ran in (so that hour is recounted whole), e.g. '2026-12-05 20:00:00':
--   ALTER TABLE riskflow.verify_events_hourly DELETE WHERE hour < '2026-12-05 20:00:00'
--   (the same for risk_scores_hourly and rule_hits_hourly; wait for the mutations), then the
--   backfill with WHERE ts < '2026-12-05 20:00:00' before each GROUP BY.
-- Each view is dropped and created again at once: rows written by another process in between
-- are not counted (a single archiver migrates before its first write, so it writes none then).

DROP TABLE IF EXISTS riskflow.verify_events_hourly_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow.verify_events_hourly_mv
TO riskflow.verify_events_hourly
AS SELECT
    toStartOfHour(ts)                            AS hour,
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

DROP TABLE IF EXISTS riskflow.risk_scores_hourly_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow.risk_scores_hourly_mv
TO riskflow.risk_scores_hourly
AS SELECT
    toStartOfHour(ts)                                        AS hour,
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

DROP TABLE IF EXISTS riskflow.rule_hits_hourly_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS riskflow.rule_hits_hourly_mv
TO riskflow.rule_hits_hourly
AS SELECT
    toStartOfHour(ts)                          AS hour,
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
