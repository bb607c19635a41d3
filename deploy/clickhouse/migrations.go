// Package clickhouse holds riskflow's ClickHouse schema as plain SQL files and embeds them
// into the binary, so `riskflow migrate` needs nothing but its own executable. Next to the
// migrations live the analysts' side of the schema: SCHEMA.md (every column of every table
// and view; a test keeps it equal to what the migrations create), queries/ (documented
// queries, runnable as they are) and backfill/ (filling the hourly views from older history).
//
// # The files
//
// migrations/NNNN_name.sql, applied in the order of NNNN (a positive number, unique). The
// number is the migration id recorded in schema_migrations; NNNN_name (without .sql) is the
// name the migrator reports. A file may hold several statements, each ended by a semicolon;
// "--" line comments and block comments are allowed anywhere and are not sent to the server.
//
// Every statement must be safe to run twice, because a migrator that stops between applying
// a file and recording it runs the file again next time: use CREATE ... IF NOT EXISTS.
// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; write a plain ADD COLUMN instead, the
// migrator treats "already exists" answers from the server as success.
//
// The SQL must run on ClickHouse 18.16 and on current releases: no DateTime64, Map,
// LowCardinality or JSON types, no table-level COMMENT, no TTL; column COMMENTs are fine.
//
// # Materialized views
//
// A view always writes TO a table created in the same file just before it (never into an
// implicit .inner table, whose naming differs between releases), and that table is an
// AggregatingMergeTree whose counters are uniq states (AggregateFunction(uniq, String) or
// uniqIf): ClickHouse 18.16 has no SimpleAggregateFunction, and uniq states merge as sets, so a
// re-delivered event, a retried INSERT or a backfill run twice counts nothing twice. Read them
// with uniqMerge / uniqIfMerge and GROUP BY.
//
// # The database name
//
// The files name the database riskflow, always as a bare word (riskflow.verify_events,
// CREATE DATABASE IF NOT EXISTS riskflow), so an analyst can read them, or pipe them into
// clickhouse-client --multiquery, as they are. The migrator replaces every bare word riskflow
// outside comments, quoted strings and quoted identifiers with the configured database name.
// Never use riskflow as the name of anything else (a column, a table) in these files.
package clickhouse

import "embed"

// Migrations holds migrations/*.sql.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Queries holds queries/*.sql: one documented SELECT per file, with a header comment saying
// what it answers. Like the migrations they name the database as the bare word riskflow, so
// they run as they are against the default database; substitute the name as the migrator
// does for another one.
//
//go:embed queries/*.sql
var Queries embed.FS

// Backfill holds backfill/*.sql: INSERT ... SELECT statements that fill the hourly views'
// tables from rows stored before the views existed. They are safe to run more than once.
//
//go:embed backfill/*.sql
var Backfill embed.FS
