-- carrier_failure_spikes: failure codes that are firing more than usual, per carrier.
--
-- Compares the failure rate of each (carrier, error_code) in the recent window (the current,
-- partial hour and the hour before it) with its average over the 24 hours before that, both
-- as failures per hour. spike = recent per hour / baseline per hour (a code never seen in the
-- baseline counts as one failure per hour there). A carrier gateway outage shows as one code
-- spiking across all apps; number probing shows as "number mismatch" codes (e.g. 103911)
-- spiking together with phones. share_of_carrier_traffic is the code's failures over all
-- verifications of that carrier in the recent window. Codes with fewer than 10 recent failures
-- are left out.
--
-- Reads: the hourly view verify_events_hourly. Runs on ClickHouse 18.16 and current releases
-- (joined subqueries carry aliases, which releases since 20.x require).

SELECT
    carrier,
    error_code,
    recent_fails,
    round(recent_fails / recent_hours, 1)                                           AS recent_per_hour,
    round(baseline_fails / 24, 1)                                                   AS baseline_per_hour,
    round((recent_fails / recent_hours) / greatest(baseline_fails / 24, 1), 2)      AS spike,
    recent_phones,
    recent_apps,
    round(recent_fails / greatest(carrier_events, 1), 4)                            AS share_of_carrier_traffic
FROM
(
    SELECT
        carrier,
        error_code,
        uniqMergeIf(events, hour >= toStartOfHour(now(), 'UTC') - INTERVAL 1 HOUR)         AS recent_fails,
        uniqMergeIf(events, hour < toStartOfHour(now(), 'UTC') - INTERVAL 1 HOUR)          AS baseline_fails,
        uniqMergeIf(phones, hour >= toStartOfHour(now(), 'UTC') - INTERVAL 1 HOUR)         AS recent_phones,
        uniqExactIf(app_id, hour >= toStartOfHour(now(), 'UTC') - INTERVAL 1 HOUR)         AS recent_apps,
        (toUInt32(now()) - toUInt32(toStartOfHour(now(), 'UTC')) + 3600) / 3600            AS recent_hours
    FROM riskflow.verify_events_hourly
    WHERE outcome = 'fail' AND hour >= toStartOfHour(now(), 'UTC') - INTERVAL 25 HOUR
    GROUP BY carrier, error_code
) AS f
ANY LEFT JOIN
(
    SELECT carrier, uniqMerge(events) AS carrier_events
    FROM riskflow.verify_events_hourly
    WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 1 HOUR
    GROUP BY carrier
) AS c USING carrier
WHERE recent_fails >= 10
ORDER BY spike DESC, recent_fails DESC, carrier, error_code
LIMIT 100;
