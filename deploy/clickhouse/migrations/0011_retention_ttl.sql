-- 0011_retention_ttl: keep raw events and verdicts for 400 days and the hourly summaries for
-- 3 years, by TTL, on servers that have it.
--
-- requires: ClickHouse >= 20.3
--
-- Applied only by ClickHouse 20.3 or newer (the migrator skips it on older servers, 18.16
-- included, and applies it after an upgrade). There, rows older than the period are deleted
-- in background merges; the tables are partitioned by day (events) and month (summaries), so
-- whole parts go at once. On 18.16 retention stays manual:
--   ALTER TABLE riskflow.verify_events DROP PARTITION 20240131
--
-- The hourly summaries outlive the events they count, so long-range analyst queries (traffic,
-- score drift, tag trends) keep working after the raw rows are gone. rule_versions,
-- schema_migrations and backtest_runs are small and kept for good.
--
-- Another period: run the same ALTER with your interval (MODIFY TTL replaces the rule) after
-- `riskflow migrate`; the migrator never runs this file again once recorded. Remove a rule with
-- ALTER TABLE ... REMOVE TTL. On a table that already holds data, MODIFY TTL also deletes the
-- expired rows of existing parts, in the background.

ALTER TABLE riskflow.verify_events MODIFY TTL ts + INTERVAL 400 DAY;

ALTER TABLE riskflow.risk_scores MODIFY TTL ts + INTERVAL 400 DAY;

ALTER TABLE riskflow.verify_events_hourly MODIFY TTL hour + INTERVAL 3 YEAR;

ALTER TABLE riskflow.risk_scores_hourly MODIFY TTL hour + INTERVAL 3 YEAR;

ALTER TABLE riskflow.rule_hits_hourly MODIFY TTL hour + INTERVAL 3 YEAR;
