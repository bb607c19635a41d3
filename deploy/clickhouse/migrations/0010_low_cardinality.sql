-- 0010_low_cardinality: dictionary-encode the event tables' repetitive text columns on servers
-- that have LowCardinality.
--
-- requires: ClickHouse >= 20.3
--
-- Applied only by ClickHouse 20.3 or newer (the migrator skips it on older servers, 18.16
-- included, and applies it after an upgrade). Columns with a handful of distinct values
-- (flow, carrier, platform, outcome, error codes, geo names, rule names, tags, modes, rules
-- versions) become LowCardinality(String): a fraction of the disk and faster GROUP BY. Names,
-- values and every query stay the same; only the storage changes, so servers without it keep
-- the String columns of 0002 and 0003. The key columns (app_id, event_id) and the per-event
-- values (ids, hashes, addresses, reasons) stay String.
--
-- On a table that already holds data each statement is a mutation that rewrites the column in
-- the background (SELECT * FROM system.mutations WHERE NOT is_done shows progress); running the
-- file again changes nothing.

ALTER TABLE riskflow.verify_events
    MODIFY COLUMN flow LowCardinality(String),
    MODIFY COLUMN carrier LowCardinality(String),
    MODIFY COLUMN platform LowCardinality(String),
    MODIFY COLUMN outcome LowCardinality(String),
    MODIFY COLUMN error_code LowCardinality(String),
    MODIFY COLUMN country LowCardinality(String),
    MODIFY COLUMN province LowCardinality(String),
    MODIFY COLUMN city LowCardinality(String),
    MODIFY COLUMN ip_type LowCardinality(String);

ALTER TABLE riskflow.risk_scores
    MODIFY COLUMN flow LowCardinality(String),
    MODIFY COLUMN carrier LowCardinality(String),
    MODIFY COLUMN tags Array(LowCardinality(String)),
    MODIFY COLUMN hit_rules Array(LowCardinality(String)),
    MODIFY COLUMN hit_tags Array(LowCardinality(String)),
    MODIFY COLUMN hit_modes Array(LowCardinality(String)),
    MODIFY COLUMN shadow_tags Array(LowCardinality(String)),
    MODIFY COLUMN rules_version LowCardinality(String);
