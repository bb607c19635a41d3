-- hourly_traffic: verifications and verdicts per hour, app, flow and carrier over the last 48 hours.
--
-- The everyday overview: verifications, distinct numbers, addresses and devices, the failure
-- share, and the score distribution (events passed 0, observed 300, stepped up 600, blocked 900).
-- All counts ignore re-delivered copies of an event.
--
-- Reads: the hourly views verify_events_hourly and risk_scores_hourly. For one tenant add
-- `AND app_id = '...'` to both inner WHERE clauses. Runs on ClickHouse 18.16 and current
-- releases (joined subqueries carry aliases, which releases since 20.x require).

SELECT
    hour,
    app_id,
    flow,
    carrier,
    verifications,
    distinct_phones,
    distinct_ips,
    distinct_devices,
    round(fails / greatest(verifications, 1), 4) AS fail_share,
    scored,
    passed,
    observed,
    stepped_up,
    blocked
FROM
(
    SELECT
        hour, app_id, flow, carrier,
        uniqMerge(events)                      AS verifications,
        uniqMerge(phones)                      AS distinct_phones,
        uniqMerge(ips)                         AS distinct_ips,
        uniqIfMerge(devices)                   AS distinct_devices,
        uniqMergeIf(events, outcome = 'fail')  AS fails
    FROM riskflow.verify_events_hourly
    WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 47 HOUR
    GROUP BY hour, app_id, flow, carrier
) AS v
ANY LEFT JOIN
(
    SELECT
        hour, app_id, flow, carrier,
        uniqMerge(events)      AS scored,
        uniqIfMerge(score_0)   AS passed,
        uniqIfMerge(score_300) AS observed,
        uniqIfMerge(score_600) AS stepped_up,
        uniqIfMerge(score_900) AS blocked
    FROM riskflow.risk_scores_hourly
    WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 47 HOUR
    GROUP BY hour, app_id, flow, carrier
) AS s USING (hour, app_id, flow, carrier)
ORDER BY hour DESC, verifications DESC, app_id, flow, carrier;
