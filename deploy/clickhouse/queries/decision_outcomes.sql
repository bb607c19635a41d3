-- decision_outcomes: what /v1/risk/check answered against what the login then did, per app, score
-- and outcome over the last 24 hours.
--
-- Joins each served verdict (risk_decisions, the decision log) to the verification event that
-- carries its id as decision_id (verify_events). For each app, answered score and outcome:
-- verdicts, distinct numbers, the median and p99 check latency, the tags answered, and how many
-- verdicts have no event yet (the attempt was abandoned, or the event did not send decision_id).
-- A verdict followed by several attempts (tried again, or a fallback to SMS) counts once, with the
-- outcome of the last of them; events are stored to the second, and of attempts in one second a
-- success is taken as the last (a login that succeeded is not tried again).
-- A block (900) followed by success means the caller ignored the verdict; many 0s followed by
-- failures point at an attack the rules miss.
--
-- Reads: risk_decisions FINAL (one row per verdict), verify_events FINAL (one row per event).
-- Change the period in both WHERE clauses.

SELECT
    d.app_id                                        AS app_id,
    d.score                                         AS score,
    if(e.last_event_id = '', '(no event)', e.last_outcome) AS outcome,
    count()                                         AS verdicts,
    uniqExact(d.phone_hash)                         AS phones,
    quantileExact(0.5)(d.latency_us)                AS p50_latency_us,
    quantileExact(0.99)(d.latency_us)               AS p99_latency_us,
    arraySort(groupUniqArrayArray(d.tags))          AS tags_answered
FROM
(
    SELECT app_id, decision_id, score, phone_hash, latency_us, tags
    FROM riskflow.risk_decisions FINAL
    WHERE ts >= now() - INTERVAL 1 DAY
) AS d
ANY LEFT JOIN
(
    SELECT app_id, decision_id,
           argMax(event_id, (ts, outcome = 'success', event_id)) AS last_event_id,
           argMax(outcome, (ts, outcome = 'success', event_id))  AS last_outcome
    FROM riskflow.verify_events FINAL
    WHERE decision_id != '' AND ts >= now() - INTERVAL 2 DAY
    GROUP BY app_id, decision_id
) AS e USING (app_id, decision_id)
GROUP BY app_id, score, outcome
ORDER BY app_id, score, outcome;
