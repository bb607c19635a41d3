-- 0001_database: the database that holds riskflow's history.
--
-- Every file in this folder names the database `riskflow`. `riskflow migrate`
-- (pipeline/chsink) runs the files in order and replaces the bare word riskflow
-- with the configured database name, so the same files serve a test database.
-- To run a file by hand against the default name:
--   clickhouse-client --multiquery < 0001_database.sql

CREATE DATABASE IF NOT EXISTS riskflow;
