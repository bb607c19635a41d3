-- score_drift: has the score distribution moved? Per app, the last 24 hours against the 7 days
-- before them.
--
-- For each app: events and the share of each score (0 pass, 300 observe, 600 step up,
-- 900 block) in both periods, the change of each share in percentage points, and the rules
-- versions that scored the recent events. A jump that starts with a new rules_version is the
-- rule change; a jump under an unchanged version is the traffic (an attack, a new client
-- release, a carrier problem). Apps with fewer than 100 recent events are left out.
--
-- Reads: the hourly view risk_scores_hourly.

SELECT
    app_id,
    recent_events,
    baseline_events,
    round(100 * recent_300 / recent_events, 2)                                           AS pct_300,
    round(100 * recent_600 / recent_events, 2)                                           AS pct_600,
    round(100 * recent_900 / recent_events, 2)                                           AS pct_900,
    round(100 * (recent_300 / recent_events - baseline_300 / greatest(baseline_events, 1)), 2) AS pp_change_300,
    round(100 * (recent_600 / recent_events - baseline_600 / greatest(baseline_events, 1)), 2) AS pp_change_600,
    round(100 * (recent_900 / recent_events - baseline_900 / greatest(baseline_events, 1)), 2) AS pp_change_900,
    recent_versions
FROM
(
    SELECT
        app_id,
        uniqMergeIf(events, recent)      AS recent_events,
        uniqIfMergeIf(score_300, recent) AS recent_300,
        uniqIfMergeIf(score_600, recent) AS recent_600,
        uniqIfMergeIf(score_900, recent) AS recent_900,
        uniqMergeIf(events, NOT recent)      AS baseline_events,
        uniqIfMergeIf(score_300, NOT recent) AS baseline_300,
        uniqIfMergeIf(score_600, NOT recent) AS baseline_600,
        uniqIfMergeIf(score_900, NOT recent) AS baseline_900,
        arraySort(groupUniqArrayIf(rules_version, recent)) AS recent_versions
    FROM
    (
        SELECT *, hour >= toStartOfHour(now(), 'UTC') - INTERVAL 23 HOUR AS recent
        FROM riskflow.risk_scores_hourly
        WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 191 HOUR
    )
    GROUP BY app_id
)
WHERE recent_events >= 100
ORDER BY greatest(greatest(abs(pp_change_300), abs(pp_change_600)), abs(pp_change_900)) DESC, app_id;
