// Package chsink writes scored events to ClickHouse, riskflow's history, and keeps its
// schema up to date.
//
// It speaks the native protocol through clickhouse-go/v2 and stays within what ClickHouse
// 18.16 and current releases both understand. The schema lives as SQL files in
// deploy/clickhouse; [Store.Migrate] applies the ones a database is missing, and those marked
// "-- requires: ClickHouse >= X.Y" only on servers of that release or newer.
//
// Every statement the package sends is built by a function of its own (insertSQL,
// readChunkSQL, [RulesReportSQL], the migrator's), so CI runs that very text on ClickHouse 18.16
// and on current ClickHouse (chDB) over one fixture and compares the results
// (TestSQLOnBothClickHouses, build tags integration and chdb; `make chdb`). A new statement
// belongs in buildCrossPlan too, as the decision log's, the labels' and `riskflow lookup`'s do.
//
// Besides the archiver's two tables it writes the decision log (risk_decisions, one row per
// (app_id, decision_id): [Store.WriteDecisions]) and labels ([Store.WriteLabels]), and reads
// them back for `riskflow lookup` ([Store.Lookup]) and backtests ([Store.ReadLabels]).
//
// Each [schemas.ScoreRecord] becomes one row in verify_events (the event) and one in
// risk_scores (the verdict and every rule hit). Both tables are ReplacingMergeTree keyed on
// (app_id, event_id), so writing the same record twice leaves one row after merges (and in
// every SELECT ... FINAL): retrying a batch is always safe. The plaintext phone number is
// never written; a record carries only its keyed hash, masked form and number segment, and
// [Store.WriteBatch] refuses records whose masked form or segment could be a full number.
//
// The package has no retry loop and no circuit breaker: the pipeline decides when to retry
// and wraps every sink in its own breaker. A ClickHouse outage only makes WriteBatch fail;
// [Open] does not need the server to be up.
//
// Two additions serve backtests (package scoring/backtest): [Store.ReadEvents] streams the
// stored events of a period back, verify_events FINAL in ts order, and
// [Store.RecordBacktestRun] stores a run's summary in backtest_runs.
//
// Typical use:
//
//	st, err := chsink.Open(ctx, chsink.Config{Addr: "127.0.0.1:9000", Database: "riskflow"})
//	if err != nil { ... }
//	defer st.Close()
//	if _, err := st.Migrate(ctx); err != nil { ... }
//	err = st.WriteBatch(ctx, records) // nil: both tables acknowledged the batch
package chsink
