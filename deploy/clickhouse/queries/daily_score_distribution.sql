-- daily_score_distribution: per app and day (China time), how many events got each score over
-- the last 30 days.
--
-- The day-by-day view of what the rules decide for each tenant: events scored, the count and
-- the share of each verdict (0 pass, 300 observe, 600 step up, 900 block), and the rules
-- versions that scored them. A share that moves on the day a version appears is the rule change;
-- one that moves under the same version is the traffic. score_drift.sql compares the last day
-- with the week before; this shows the whole month. Days are China days (00:00 to 24:00
-- Asia/Shanghai): today and the 29 before it, each whole (the window starts at a China
-- midnight), today's partial.
--
-- Reads: the hourly view risk_scores_hourly (cheap over months). An event scored again under
-- another rules version counts once in events and once per version in the verdict counts.

SELECT
    toDate(toTimeZone(hour, 'Asia/Shanghai'))     AS day_cn,
    app_id,
    uniqMerge(events)                             AS events,
    uniqIfMerge(score_0)                          AS passed,
    uniqIfMerge(score_300)                        AS observed,
    uniqIfMerge(score_600)                        AS stepped_up,
    uniqIfMerge(score_900)                        AS blocked,
    round(100 * observed / events, 2)             AS pct_300,
    round(100 * stepped_up / events, 2)           AS pct_600,
    round(100 * blocked / events, 2)              AS pct_900,
    arraySort(groupUniqArray(rules_version))      AS rules_versions
FROM riskflow.risk_scores_hourly
WHERE hour >= toDateTime(toDate(toTimeZone(now(), 'Asia/Shanghai')) - 29, 'Asia/Shanghai')
GROUP BY day_cn, app_id
ORDER BY day_cn DESC, app_id;
