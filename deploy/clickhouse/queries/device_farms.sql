-- device_farms: which devices log in with many different numbers — modem pools (猫池), emulator
-- and phone farms — over the last 24 hours.
--
-- An ordinary device verifies one or two numbers; a modem pool cycles through dozens of SIM
-- cards, usually of one or two blocks (often MVNO, 170/171), from one or a few addresses. One row
-- per device with at least 5 distinct numbers:
--   phones / attempts / fails  distinct numbers, verifications, failed ones
--   segments                   distinct number blocks among the numbers (few: bought in bulk)
--   ips / networks             distinct addresses and /24 (IPv6: /48) networks it came from
--   apps / platforms           tenants and client platforms it used
--   first_seen / last_seen     its first and last verification in the period
--   flagged / tags_earned      verdicts 600 or 900 and the tags they carried
-- Devices are what the client sends (device_id); a farm that resets its fingerprint per number
-- hides from this query and shows in number_block_hotspots.sql and ip_networks.sql instead.
--
-- Reads: verify_events FINAL and risk_scores FINAL. For one tenant add `AND app_id = '...'` to
-- both inner WHERE clauses.

SELECT
    device_id,
    uniqExact(phone_hash)                   AS phones,
    count()                                 AS attempts,
    countIf(outcome = 'fail')               AS fails,
    uniqExact(phone_segment)                AS segments,
    uniqExact(ip)                           AS ips,
    uniqExact(network)                      AS networks,
    uniqExact(app_id)                       AS apps,
    arraySort(groupUniqArray(platform))     AS platforms,
    min(ts)                                 AS first_seen,
    max(ts)                                 AS last_seen,
    countIf(score >= 600)                   AS flagged,
    arraySort(groupUniqArrayArray(tags))    AS tags_earned
FROM
(
    SELECT
        app_id, event_id, ts, device_id, phone_hash, phone_segment, outcome, ip, platform,
        if(position(ip, ':') > 0,
           cutIPv6(IPv6StringToNum(ip), 10, 0),
           substring(ip, 1, length(ip) - position(reverse(ip), '.'))) AS network
    FROM riskflow.verify_events FINAL
    WHERE ts >= now() - INTERVAL 1 DAY AND device_id != ''
) AS e
ANY LEFT JOIN
(
    SELECT app_id, event_id, score, tags
    FROM riskflow.risk_scores FINAL
    WHERE ts >= now() - INTERVAL 1 DAY
) AS s USING (app_id, event_id)
GROUP BY device_id
HAVING phones >= 5
ORDER BY phones DESC, attempts DESC, device_id
LIMIT 100;
