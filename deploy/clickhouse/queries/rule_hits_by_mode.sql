-- rule_hits_by_mode: per day (China time) and rule, how often it matched in enforce mode and in
-- shadow mode over the last 14 days (today and the 13 China days before it, each whole: the
-- window starts at a China midnight).
--
-- A rule is usually tried in shadow mode (it matches and is stored, but never counts in the
-- score) and then promoted to enforce. This shows both modes side by side, day by day: events
-- the rule matched as enforced, as shadow, and each as a share of all events scored that day,
-- so a promotion shows as the shadow line handing over to the enforce line at the same level,
-- and a rule that suddenly matches far more (an attack, or a feature that broke) stands out.
-- Rules of the other two modes have their hits in tag_hits (tag rules, level 0: they add their
-- tag without raising the score) and allow_hits (allow rules, which pass the event).
-- One row per day and rule; tag is the rule's tag. rule_hit_rates.sql has the last 24 hours in
-- detail (would_raise, decisive); tag_trends.sql the tags per hour.
--
-- Reads: the hourly views rule_hits_hourly and risk_scores_hourly.

SELECT
    h.day_cn                                            AS day_cn,
    h.rule                                              AS rule,
    h.tag                                               AS tag,
    h.enforce_hits                                      AS enforce_hits,
    h.shadow_hits                                       AS shadow_hits,
    h.tag_hits                                          AS tag_hits,
    h.allow_hits                                        AS allow_hits,
    t.scored                                            AS scored,
    round(h.enforce_hits / greatest(t.scored, 1), 5)    AS enforce_rate,
    round(h.shadow_hits / greatest(t.scored, 1), 5)     AS shadow_rate
FROM
(
    SELECT
        toDate(toTimeZone(hour, 'Asia/Shanghai'))    AS day_cn,
        rule,
        any(tag)                                     AS tag,
        uniqMergeIf(events, mode = 'enforce')        AS enforce_hits,
        uniqMergeIf(events, mode = 'shadow')         AS shadow_hits,
        uniqMergeIf(events, mode = 'tag')            AS tag_hits,
        uniqMergeIf(events, mode = 'allow')          AS allow_hits
    FROM riskflow.rule_hits_hourly
    WHERE hour >= toDateTime(toDate(toTimeZone(now(), 'Asia/Shanghai')) - 13, 'Asia/Shanghai')
    GROUP BY day_cn, rule
) AS h
ANY LEFT JOIN
(
    SELECT toDate(toTimeZone(hour, 'Asia/Shanghai')) AS day_cn, uniqMerge(events) AS scored
    FROM riskflow.risk_scores_hourly
    WHERE hour >= toDateTime(toDate(toTimeZone(now(), 'Asia/Shanghai')) - 13, 'Asia/Shanghai')
    GROUP BY day_cn
) AS t USING day_cn
ORDER BY day_cn DESC, rule;
