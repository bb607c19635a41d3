-- rule_hit_rates: how often each rule matched in the last 24 hours, shadow rules next to
-- enforced ones.
--
-- One row per rule and mode, from the rule hits stored with every verdict (the parallel arrays
-- hit_rules, hit_tags, hit_scores, hit_modes of risk_scores, one row per hit with ARRAY JOIN):
--   hits          events the rule matched
--   hit_rate      hits / all events scored in the period
--   phones        distinct numbers among them
--   decisive      enforce: hits where the rule's level is the verdict (nothing stronger matched)
--   would_raise   shadow: hits where the rule's level is above the verdict, i.e. events whose
--                 verdict would go up if the rule were enforced, the cost of promoting it
-- A shadow rule with a high would_raise and a low precision in a backtest is not ready.
--
-- Reads: risk_scores FINAL (one row per event, the latest scoring). For one tenant add
-- `AND app_id = '...'` to both WHERE clauses.

SELECT
    rule,
    mode,
    any(hit_tag)                                              AS tag,
    any(hit_level)                                            AS level,
    count()                                                   AS hits,
    round(hits / any(scored), 5)                              AS hit_rate,
    uniqExact(phone_hash)                                     AS phones,
    if(mode = 'enforce', countIf(hit_level = score), 0)       AS decisive,
    if(mode = 'shadow', countIf(hit_level > score), 0)        AS would_raise,
    arraySort(groupUniqArray(rules_version))                  AS rules_versions
FROM
(
    SELECT rule, hit_tag, hit_level, mode, score, phone_hash, rules_version,
           (SELECT count() FROM riskflow.risk_scores FINAL WHERE ts >= now() - INTERVAL 1 DAY) AS scored
    FROM riskflow.risk_scores FINAL
    ARRAY JOIN hit_rules AS rule, hit_tags AS hit_tag, hit_scores AS hit_level, hit_modes AS mode
    WHERE ts >= now() - INTERVAL 1 DAY
)
GROUP BY rule, mode
ORDER BY mode, hits DESC, rule;
