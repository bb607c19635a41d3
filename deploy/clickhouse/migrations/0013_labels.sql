-- 0013_labels: what people concluded about decisions and events: fraud or legit, with who and
-- when (`riskflow label`, POST /v1/admin/labels).
--
-- A label marks a decision (target 'decision', target_id = risk_decisions.decision_id) or an event
-- (target 'event', target_id = verify_events.event_id) of one app. A correction is a new label for
-- the same target: the latest (labeled_at) is kept after merges (or with FINAL). `riskflow
-- backtest` reads them for precision and recall; a decision's label counts for the event that
-- carries its decision_id.
--   SELECT target, label, count() FROM riskflow.labels FINAL GROUP BY target, label

CREATE TABLE IF NOT EXISTS riskflow.labels
(
    app_id     String          COMMENT 'tenant',
    target     String          COMMENT 'decision or event',
    target_id  String          COMMENT 'decision_id or event_id the label marks',
    label      String          COMMENT 'fraud or legit',
    note       String          COMMENT 'free text of the person who labelled',
    labeled_by String          COMMENT 'who labelled (api:<admin>, cli:<user>)',
    labeled_at DateTime('UTC') COMMENT 'when; the latest label of a target is kept'
)
ENGINE = ReplacingMergeTree(labeled_at)
PARTITION BY toYYYYMM(labeled_at)
ORDER BY (app_id, target, target_id)
SETTINGS index_granularity = 8192;
