-- top_risky_ips: the client addresses behind the most step-up and block verdicts in the last 24 hours.
--
-- For each IP: scored events, how many were stepped up (600) or blocked (900), distinct numbers
-- and apps, every tag its events earned, and its network facts from verify_events. A mobile
-- carrier NAT address shows many phones with few flagged events; a farm shows many phones with
-- most of them flagged, often on a datacenter (idc) address.
--
-- Reads: risk_scores FINAL (one row per event), verify_events FINAL.
-- Change the period in both WHERE clauses, the ranking in ORDER BY, the length in LIMIT.

SELECT
    s.ip                                        AS ip,
    s.events                                    AS events,
    s.flagged                                   AS flagged,
    s.blocked                                   AS blocked,
    round(s.flagged / s.events, 3)              AS flagged_share,
    s.phones                                    AS phones,
    s.apps                                      AS apps,
    s.tags_earned                               AS tags_earned,
    g.country                                   AS country,
    g.province                                  AS province,
    g.asn                                       AS asn,
    g.ip_type                                   AS ip_type,
    g.fails                                     AS fails
FROM
(
    SELECT
        ip,
        count()                        AS events,
        countIf(score >= 600)          AS flagged,
        countIf(score = 900)           AS blocked,
        uniqExact(phone_hash)          AS phones,
        uniqExact(app_id)              AS apps,
        arraySort(groupUniqArrayArray(tags)) AS tags_earned
    FROM riskflow.risk_scores FINAL
    WHERE ts >= now() - INTERVAL 1 DAY
    GROUP BY ip
    HAVING flagged > 0
) AS s
ANY LEFT JOIN
(
    SELECT
        ip,
        any(country)             AS country,
        any(province)            AS province,
        any(asn)                 AS asn,
        any(ip_type)             AS ip_type,
        countIf(outcome = 'fail') AS fails
    FROM riskflow.verify_events FINAL
    WHERE ts >= now() - INTERVAL 1 DAY
    GROUP BY ip
) AS g USING ip
ORDER BY flagged DESC, phones DESC, ip
LIMIT 50;
