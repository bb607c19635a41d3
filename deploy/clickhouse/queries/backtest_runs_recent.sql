-- backtest_runs_recent: the last 20 backtests, newest first, with what each would change.
--
-- One row per `riskflow backtest` run: the period, both packs, how many events changed score,
-- the score transitions other than "unchanged" (current→candidate: events), the rules that
-- gained or lost hits (rule +gained/-lost), and precision and recall when the run had labels.
-- For one transition per row use the ARRAY JOIN shown in migrations/0009_backtest_runs.sql;
-- the JSON columns transitions and rule_diffs also hold example event ids.
--
-- Reads: backtest_runs FINAL.

SELECT
    run_id,
    started_at,
    from_ts,
    to_ts,
    concat(current_name, '@', current_version)       AS current_pack,
    concat(candidate_name, '@', candidate_version)   AS candidate_pack,
    events,
    changed_events,
    round(events_per_sec)                            AS events_per_sec,
    arrayStringConcat(arrayFilter(x -> x != '',
        arrayMap((f, t, n) -> if(f = t, '', concat(toString(f), '→', toString(t), ': ', toString(n))),
                 transition_from, transition_to, transition_count)), ', ') AS transitions_changed,
    arrayStringConcat(arrayFilter(x -> x != '',
        arrayMap((r, g, l) -> if(g = 0 AND l = 0, '', concat(r, ' +', toString(g), '/-', toString(l))),
                 rule_ids, rule_gained, rule_lost)), ', ')                   AS rules_changed,
    labeled,
    current_precision,
    current_recall,
    candidate_precision,
    candidate_recall
FROM riskflow.backtest_runs FINAL
ORDER BY started_at DESC, run_id
LIMIT 20;
