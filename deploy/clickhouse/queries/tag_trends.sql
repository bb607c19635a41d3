-- tag_trends: how often each tag was given, hour by hour, over the last 7 days.
--
-- One row per hour and tag: events that earned the tag (as returned to callers: the tags of
-- enforce rules, of tag rules, level 0, such as odd_hour, and of allow rules), distinct numbers,
-- the share of all events scored in that hour, and the change of that share against the same
-- hour one day earlier (0 there when the tag did not fire), so a tag that suddenly fires more
-- (an attack, or a bad rule change) stands out. A tag that stops firing shows too: a row of 0
-- events in each past hour a day after one it fired in, its change the share it had then (an
-- attack that moved on, or a rule a change broke). Shadow rules are left out; see
-- rule_hit_rates.sql for them. The view keeps rule hits, not the tags returned: an event an
-- allow rule passed (the caller got only the allow rule's tag) also counts under the tags of
-- its other hits; risk_scores.tags (ARRAY JOIN) has the exact tags of such events.
--
-- Reads: the hourly views rule_hits_hourly and risk_scores_hourly (cheap over long periods).
-- For one tenant add `AND app_id = '...'` to the four innermost WHERE clauses. Runs on
-- ClickHouse 18.16 and current releases (joined subqueries carry aliases, which releases since
-- 20.x require).

SELECT
    hour,
    tag,
    tagged_events,
    distinct_phones,
    round(share, 4)              AS share,
    round(share - prev_share, 4) AS share_change_vs_day_before
FROM
(
    SELECT hour, tag, tagged_events, distinct_phones, tagged_events / greatest(scored, 1) AS share
    FROM
    (
        SELECT hour, tag, tagged_events, distinct_phones
        FROM
        (
            -- The rows shown: each hour a tag fired in, and each past hour a day after one.
            SELECT DISTINCT hour, tag
            FROM
            (
                SELECT arrayJoin([fired, fired + 86400]) AS hour, fired, tag
                FROM
                (
                    SELECT hour AS fired, tag
                    FROM riskflow.rule_hits_hourly
                    WHERE mode != 'shadow' AND hour >= toStartOfHour(now(), 'UTC') - INTERVAL 8 DAY
                    GROUP BY hour, tag
                )
            )
            WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 7 DAY
              AND (hour = fired OR hour < toStartOfHour(now(), 'UTC'))
        ) AS shown
        ANY LEFT JOIN
        (
            SELECT hour, tag, uniqMerge(events) AS tagged_events, uniqMerge(phones) AS distinct_phones
            FROM riskflow.rule_hits_hourly
            WHERE mode != 'shadow' AND hour >= toStartOfHour(now(), 'UTC') - INTERVAL 7 DAY
            GROUP BY hour, tag
        ) AS tagged USING (hour, tag)
    ) AS tagged_or_not
    ANY LEFT JOIN
    (
        SELECT hour, uniqMerge(events) AS scored
        FROM riskflow.risk_scores_hourly
        WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 7 DAY
        GROUP BY hour
    ) AS scored_hours USING hour
) AS cur
ANY LEFT JOIN
(
    SELECT next_day AS hour, tag, prev_share
    FROM
    (
        SELECT hour + 86400 AS next_day, tag, prev_tagged / greatest(prev_scored, 1) AS prev_share
        FROM
        (
            SELECT hour, tag, uniqMerge(events) AS prev_tagged
            FROM riskflow.rule_hits_hourly
            WHERE mode != 'shadow' AND hour >= toStartOfHour(now(), 'UTC') - INTERVAL 8 DAY
            GROUP BY hour, tag
        ) AS prev_tagged_hours
        ANY LEFT JOIN
        (
            SELECT hour, uniqMerge(events) AS prev_scored
            FROM riskflow.risk_scores_hourly
            WHERE hour >= toStartOfHour(now(), 'UTC') - INTERVAL 8 DAY
            GROUP BY hour
        ) AS prev_scored_hours USING hour
    )
) AS prev USING (hour, tag)
ORDER BY hour DESC, tagged_events DESC, tag;
