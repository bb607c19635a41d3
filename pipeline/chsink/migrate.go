package chsink

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
)

const migrationsTable = "schema_migrations"

// Migrate brings the database up to date: it applies, in order, every migration of
// deploy/clickhouse that schema_migrations does not list and that is meant for the server's
// release, records each one, and returns the names of those it applied (nil when there was
// nothing to do). On error it returns the names applied before the failure.
//
// A version-conditional migration (header line "-- requires: ClickHouse >= X.Y", see
// deploy/clickhouse) is skipped on an older server and not recorded: the migrator applies it
// once the server has been upgraded.
//
// Running it again, or from two processes at once, is safe: every statement is written to
// be repeatable, and "already exists" answers from the server count as success. A migration
// that was applied but not recorded (the process died in between) is simply applied again.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	migs, err := loadMigrations(chschema.Migrations, "migrations", s.db)
	if err != nil {
		return nil, fmt.Errorf("chsink: migrate: %w", err)
	}
	version, err := s.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("chsink: migrate: %w", err)
	}
	haveTable, err := s.migrationsTableExists(ctx)
	if err != nil {
		return nil, err
	}
	applied := map[uint32]bool{}
	if haveTable {
		if applied, err = s.appliedMigrations(ctx); err != nil {
			return nil, err
		}
		if err = s.forgetMissing(ctx, migs, applied); err != nil {
			return nil, err
		}
	}
	known := map[uint32]bool{}
	for _, m := range migs {
		known[m.id] = true
	}
	for id := range applied {
		if !known[id] {
			s.log.Warn("clickhouse schema has a migration this binary does not know; is it older than the last one that migrated?",
				"database", s.db, "migration_id", id)
		}
	}
	todo, skipped := pendingMigrations(migs, applied, version)
	for _, m := range skipped {
		s.log.Info("clickhouse migration skipped: the server is older than it requires; it is applied after an upgrade",
			"database", s.db, "migration", m.name, "requires", m.requires.String(), "server", version.String())
	}

	var (
		done       []string
		unrecorded []migration // applied before schema_migrations existed
	)
	for _, m := range todo {
		for i, stmt := range m.statements {
			if err := s.execDDL(ctx, stmt); err != nil {
				return done, fmt.Errorf("chsink: migration %s, statement %d: %w", m.name, i+1, err)
			}
		}
		done = append(done, m.name)
		s.log.Info("clickhouse migration applied", "database", s.db, "migration", m.name)
		unrecorded = append(unrecorded, m)
		if !haveTable {
			if haveTable, err = s.migrationsTableExists(ctx); err != nil {
				return done, err
			}
		}
		if haveTable {
			if err := s.recordMigrations(ctx, unrecorded); err != nil {
				return done, err
			}
			unrecorded = nil
		}
	}
	if len(unrecorded) > 0 {
		return done, fmt.Errorf("chsink: migrate: no migration created %s.%s, so %d applied migrations are not recorded",
			s.db, migrationsTable, len(unrecorded))
	}
	return done, nil
}

// forgetMissing takes out of applied every migration that creates or alters a table or view the
// database no longer has (dropped by hand, or with the database's other tables lost), so that
// Migrate applies it again — and with it every recorded migration that altered that table since
// (a column added, a TTL). Without it a dropped table stayed missing for good: schema_migrations
// listed its migration, riskflow migrate had nothing to do, and the archiver retried its INSERT
// forever with "table missing (riskflow migrate creates it)". Every statement is repeatable, so
// applying them again changes nothing else.
func (s *Store) forgetMissing(ctx context.Context, migs []migration, applied map[uint32]bool) error {
	have, err := s.tableNames(ctx)
	if err != nil {
		return err
	}
	for _, m := range migs {
		if !applied[m.id] {
			continue
		}
		for _, obj := range touchedObjects(m, s.db) {
			if !have[obj] {
				s.log.Warn("clickhouse table of an applied migration is missing; applying the migration again",
					"database", s.db, "table", obj, "migration", m.name)
				delete(applied, m.id)
				break
			}
		}
	}
	return nil
}

// touchedObjects are the tables and views of database that m's statements create or alter.
func touchedObjects(m migration, database string) []string {
	re := regexp.MustCompile(`(?i)\b(?:CREATE\s+(?:TABLE|(?:MATERIALIZED\s+)?VIEW)\s+IF\s+NOT\s+EXISTS|ALTER\s+TABLE)\s+` +
		regexp.QuoteMeta(database) + `\.(\w+)`)
	var out []string
	for _, stmt := range m.statements {
		for _, sub := range re.FindAllStringSubmatch(stmt, -1) {
			if !slices.Contains(out, sub[1]) {
				out = append(out, sub[1])
			}
		}
	}
	return out
}

func (s *Store) tableNames(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, tableNamesSQL(s.db))
	if err != nil {
		return nil, fmt.Errorf("chsink: migrate: list the tables of %s: %w", s.db, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("chsink: migrate: list the tables of %s: %w", s.db, err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: migrate: list the tables of %s: %w", s.db, err)
	}
	return have, nil
}

// serverVersionSQL asks the server its release.
const serverVersionSQL = "SELECT version()"

// ServerVersion is the release of the ClickHouse server, as version() reports it.
func (s *Store) ServerVersion(ctx context.Context) (chschema.Version, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var text string
	if err := s.conn.QueryRow(ctx, serverVersionSQL).Scan(&text); err != nil {
		return nil, fmt.Errorf("ask the server its version: %w", err)
	}
	return chschema.ParseVersion(text)
}

// The statements the migrator sends besides the migrations themselves. database is a checked
// identifier (Config.Validate), so it is written into them as it is.
func migrationsTableExistsSQL(database string) string {
	return "SELECT count() FROM system.tables WHERE database = '" + database + "' AND name = '" + migrationsTable + "'"
}

func tableNamesSQL(database string) string {
	return "SELECT name FROM system.tables WHERE database = '" + database + "'"
}

func appliedMigrationsSQL(database string) string {
	return "SELECT DISTINCT id FROM " + database + "." + migrationsTable
}

// schemaMigrationsColumns are the columns recordMigrations inserts, in the order of its rows.
var schemaMigrationsColumns = []string{"id", "name", "applied_at"}

// execDDL runs one migration statement. "Already exists" answers (two migrators racing on
// CREATE ... IF NOT EXISTS, or re-running a plain ADD COLUMN, which 18.16 cannot guard with
// IF NOT EXISTS) mean the statement's effect is in place.
func (s *Store) execDDL(ctx context.Context, stmt string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	err := s.conn.Exec(ctx, stmt)
	if err != nil && alreadyExists(err) {
		s.log.Info("clickhouse migration statement already in effect", "database", s.db, "answer", err.Error())
		return nil
	}
	return err
}

// ErrNoTable marks a read of a table the database does not have yet (riskflow migrate creates it).
var ErrNoTable = errors.New("table missing (riskflow migrate creates it)")

// MissingTable is err wrapped with ErrNoTable when the server said the table or its database does
// not exist, else err: for callers that query ClickHouse on their own (riskflow rules report).
func MissingTable(err error) error { return noTable(err) }

// MissingDatabase reports whether err says the database itself does not exist (not only a table):
// a mistyped clickhouse.database, which a command that only adds rows should refuse rather than
// create.
func MissingDatabase(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == codeUnknownDatabase
}

// ErrNoColumn marks a use of a column the table does not have yet: the database is behind this
// build's schema — restored from a backup older than a migration — and riskflow migrate adds it.
var ErrNoColumn = errors.New("column missing (riskflow migrate adds it)")

// SchemaBehind reports whether err says the database lacks a table, or a column, that the
// migrations create: applying them again (Store.Migrate) mends it.
func SchemaBehind(err error) bool {
	return errors.Is(err, ErrNoTable) || errors.Is(err, ErrNoColumn)
}

// ClickHouse error codes of a table, database or column that does not exist, on 18.16 as on
// current releases.
const (
	codeNoSuchColumn    = 16 // "No such column decision_id in table verify_events"
	codeUnknownTable    = 60
	codeUnknownDatabase = 81
)

// noTable wraps err with ErrNoTable when the server said the table or its database does not exist
// (a read before riskflow migrate; an INSERT of an archiver whose database was dropped under it),
// and with ErrNoColumn when it said a column does not (a database restored from an older backup).
func noTable(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeUnknownTable, codeUnknownDatabase:
			return fmt.Errorf("%w: %w", ErrNoTable, err)
		case codeNoSuchColumn:
			return fmt.Errorf("%w: %w", ErrNoColumn, err)
		}
	}
	return err
}

// ClickHouse error codes that mean "the thing you create is there".
const (
	codeDuplicateColumn       = 15 // current releases: "Cannot add column `x`: column with this name already exists"
	codeIllegalColumn         = 44 // 18.16: "Cannot add column x: column with this name already exists"
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

func alreadyExists(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case codeTableAlreadyExists, codeDatabaseAlreadyExists, codeIllegalColumn, codeDuplicateColumn:
		return strings.Contains(strings.ToLower(ex.Message), "already exists")
	}
	return false
}

func (s *Store) migrationsTableExists(ctx context.Context) (bool, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var n uint64
	err := s.conn.QueryRow(ctx, migrationsTableExistsSQL(s.db)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("chsink: migrate: look for %s.%s: %w", s.db, migrationsTable, err)
	}
	return n > 0, nil
}

func (s *Store) appliedMigrations(ctx context.Context) (map[uint32]bool, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, appliedMigrationsSQL(s.db))
	if err != nil {
		return nil, fmt.Errorf("chsink: migrate: read %s.%s: %w", s.db, migrationsTable, err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("chsink: migrate: read %s.%s: %w", s.db, migrationsTable, err)
		}
		applied[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: migrate: read %s.%s: %w", s.db, migrationsTable, err)
	}
	return applied, nil
}

func (s *Store) recordMigrations(ctx context.Context, ms []migration) (err error) {
	ctx, done := s.insertContext(ctx) // an INSERT, bounded like every other one (see insertContext)
	defer done()
	defer func() {
		if err != nil {
			err = fmt.Errorf("chsink: migrate: record in %s.%s: %w", s.db, migrationsTable, err)
		}
	}()
	batch, err := s.conn.PrepareBatch(ctx, insertSQL(s.db, migrationsTable, schemaMigrationsColumns))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = batch.Abort()
		}
	}()
	now := time.Now().UTC()
	for _, m := range ms {
		if err = batch.Append(m.id, m.name, now); err != nil {
			return err
		}
	}
	return batch.Send()
}
