-- ip_networks: which networks — IPv4 /24s (IPv6 /48s) and the autonomous systems they belong
-- to — carried the suspicious traffic of the last 24 hours.
--
-- Farms rent addresses by the block: a datacenter /24 whose addresses each look modest adds up to
-- one source; a carrier NAT range carries many numbers with few verdicts. One row per network and
-- ASN that had a verdict of 600 or 900, or at least 20 distinct numbers:
--   network        a.b.c.0/24, or the /48 prefix of an IPv6 address (2001:db8:85a3::/48)
--   asn            autonomous system number from the geo data (0: unknown or geo off)
--   country / ip_type  geo of the network (ip_type idc: a datacenter or proxy range)
--   addresses / phones / devices / apps  distinct values behind the network
--   events / fails / flagged              verifications, failures, verdicts 600 or 900
--   flagged_share  flagged / events; tags_earned, the tags those verdicts carried
-- Group the result by asn alone to rank whole providers.
--
-- Reads: verify_events FINAL and risk_scores FINAL. For one tenant add `AND app_id = '...'` to
-- both inner WHERE clauses.

SELECT
    network,
    asn,
    any(country)                            AS country,
    any(ip_type)                            AS ip_type,
    uniqExact(ip)                           AS addresses,
    uniqExact(phone_hash)                   AS phones,
    uniqExactIf(device_id, device_id != '') AS devices,
    uniqExact(app_id)                       AS apps,
    count()                                 AS events,
    countIf(outcome = 'fail')               AS fails,
    countIf(score >= 600)                   AS flagged,
    round(flagged / events, 3)              AS flagged_share,
    arraySort(groupUniqArrayArray(tags))    AS tags_earned
FROM
(
    SELECT
        app_id, event_id, ip, asn, country, ip_type, phone_hash, device_id, outcome,
        if(position(ip, ':') > 0,
           concat(cutIPv6(IPv6StringToNum(ip), 10, 0), '/48'),
           concat(substring(ip, 1, length(ip) - position(reverse(ip), '.')), '.0/24')) AS network
    FROM riskflow.verify_events FINAL
    WHERE ts >= now() - INTERVAL 1 DAY
) AS e
ANY LEFT JOIN
(
    SELECT app_id, event_id, score, tags
    FROM riskflow.risk_scores FINAL
    WHERE ts >= now() - INTERVAL 1 DAY
) AS s USING (app_id, event_id)
GROUP BY network, asn
HAVING flagged > 0 OR phones >= 20
ORDER BY flagged DESC, phones DESC, network, asn
LIMIT 100;
