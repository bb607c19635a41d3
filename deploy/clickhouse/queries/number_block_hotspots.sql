-- number_block_hotspots: which number blocks (连号) are being worked through right now — many
-- distinct numbers of one 7-digit segment in one hour, from few addresses and devices.
--
-- SMS pumping and number probing walk a block of consecutive numbers (1380099 0000, 0001, …).
-- The numbers themselves are stored only as keyed hashes, but they share their segment
-- (phone_segment, the first 7 digits), so a block being walked shows as one segment with far more
-- distinct numbers per hour than it usually has. One row per segment and hour of the last 24
-- hours with at least 20 distinct numbers:
--   phones            distinct numbers of the segment in that hour
--   attempts / fails  verifications and failed ones (probing fails a lot: "number mismatch")
--   ips / devices     distinct client addresses and devices behind them: few of each is a farm
--   apps              tenants hit; a block walked across apps is an SMS-pumping campaign
--   flagged           verdicts 600 or 900 among them, and tags_earned, what the rules said
--   baseline_phones_per_hour  the segment's distinct numbers per hour over the 7 days before
--   burst             phones / baseline (a baseline under 1 counts as 1)
-- Ordinary blocks of a large carrier reach the threshold only in large apps; raise it there.
--
-- Reads: verify_events FINAL and risk_scores FINAL (raw events: the hourly views do not keep
-- the segment). For one tenant add `AND app_id = '...'` to the three inner WHERE clauses.

SELECT
    h.phone_segment                                          AS phone_segment,
    h.hour                                                   AS hour,
    h.phones                                                 AS phones,
    h.attempts                                               AS attempts,
    h.fails                                                  AS fails,
    h.ips                                                    AS ips,
    h.devices                                                AS devices,
    h.apps                                                   AS apps,
    h.flagged                                                AS flagged,
    h.tags_earned                                            AS tags_earned,
    round(b.baseline_phones_per_hour, 2)                     AS baseline_phones_per_hour,
    round(h.phones / greatest(b.baseline_phones_per_hour, 1), 1) AS burst
FROM
(
    SELECT
        phone_segment,
        toStartOfHour(ts)                          AS hour,
        uniqExact(phone_hash)                      AS phones,
        count()                                    AS attempts,
        countIf(outcome = 'fail')                  AS fails,
        uniqExact(ip)                              AS ips,
        uniqExactIf(device_id, device_id != '')    AS devices,
        uniqExact(app_id)                          AS apps,
        countIf(score >= 600)                      AS flagged,
        arraySort(groupUniqArrayArray(tags))       AS tags_earned
    FROM
    (
        SELECT app_id, event_id, ts, phone_segment, phone_hash, outcome, ip, device_id
        FROM riskflow.verify_events FINAL
        WHERE ts >= toStartOfHour(now(), 'UTC') - INTERVAL 23 HOUR
    ) AS e
    ANY LEFT JOIN
    (
        SELECT app_id, event_id, score, tags
        FROM riskflow.risk_scores FINAL
        WHERE ts >= toStartOfHour(now(), 'UTC') - INTERVAL 23 HOUR
    ) AS s USING (app_id, event_id)
    GROUP BY phone_segment, hour
    HAVING phones >= 20
) AS h
ANY LEFT JOIN
(
    SELECT phone_segment, sum(phones) / 168 AS baseline_phones_per_hour
    FROM
    (
        SELECT phone_segment, toStartOfHour(ts) AS hour, uniqExact(phone_hash) AS phones
        FROM riskflow.verify_events FINAL
        WHERE ts >= toStartOfHour(now(), 'UTC') - INTERVAL 191 HOUR AND ts < toStartOfHour(now(), 'UTC') - INTERVAL 23 HOUR
        GROUP BY phone_segment, hour
    )
    GROUP BY phone_segment
) AS b USING phone_segment
ORDER BY burst DESC, phones DESC, phone_segment, hour
LIMIT 100;
