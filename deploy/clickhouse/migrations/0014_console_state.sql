-- 0014_console_state: the console's working state, shared by every node that serves it: drafts of
-- rule packs, promotion requests waiting for a second admin, backtest runs started from the
-- console (state, progress, report) and requests to cancel them.
--
-- One row per write; the latest write (updated_ns) of a (kind, id) is what the console reads, and
-- a removed item is a write with deleted = 1. What is waiting for approval:
--   SELECT id, argMax(admin, updated_ns) AS asked_by, argMax(node, updated_ns) AS node
--   FROM riskflow.console_state
--   WHERE kind = 'promotion'
--   GROUP BY id
--   HAVING argMax(deleted, updated_ns) = 0
--
-- Small and not partitioned: a draft or a request of last year collapses with today's writes.

CREATE TABLE IF NOT EXISTS riskflow.console_state
(
    kind       String COMMENT 'draft, promotion, backtest or backtest_cancel',
    id         String COMMENT 'the admin (draft), the request (promotion), the run (backtest, backtest_cancel)',
    updated_ns UInt64 COMMENT 'when written, unix nanoseconds; the latest write of a (kind, id) is kept',
    node       String COMMENT 'node that wrote it',
    admin      String COMMENT 'admin whose action wrote it',
    deleted    UInt8  COMMENT '1: the item was removed (a draft discarded or promoted, a request approved or withdrawn)',
    body       String COMMENT 'the item: a draft''s text, or JSON of a request (with its draft) or of a run (with its report)'
)
ENGINE = ReplacingMergeTree(updated_ns)
ORDER BY (kind, id)
SETTINGS index_granularity = 8192;
