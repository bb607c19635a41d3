-- 0016_risk_decisions_ttl: keep served verdicts (the decision log) for 400 days, as events and
-- scored verdicts are kept (0011), on servers that have TTL.
--
-- requires: ClickHouse >= 20.3
--
-- risk_decisions (0012) came after 0011, which gave verify_events and risk_scores their TTL: the
-- decision log — phone hashes, masked numbers, addresses and device ids of every check — was kept
-- for good while the events it joins were deleted after 400 days. Applied only by ClickHouse 20.3
-- or newer; on 18.16 retention stays manual:
--   ALTER TABLE riskflow.risk_decisions DROP PARTITION 20240131
--
-- Another period: run the same ALTER with your interval after `riskflow migrate`.

ALTER TABLE riskflow.risk_decisions MODIFY TTL ts + INTERVAL 400 DAY;
