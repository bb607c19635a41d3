package chsink

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrNoRuleVersion is returned by [Store.RuleVersion] for a version rule_versions does not hold.
var ErrNoRuleVersion = errors.New("chsink: no such rule version")

// ruleVersionListColumns are what RuleVersions reads: every column but the content.
var ruleVersionListColumns = []string{"version", "name", "loaded_at", "loaded_by", "source", "rule_count"}

// versionText is what a rule version may look like (rules.Pack.Version is 16 hex digits); no
// quote or backslash, so RuleVersion embeds it in its statement only after this check.
var versionText = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)

// ruleVersionsSQL lists the recorded versions, the latest load of each, newest first.
func ruleVersionsSQL(database string, limit int) string {
	return fmt.Sprintf("SELECT %s FROM %s.rule_versions FINAL ORDER BY loaded_at DESC, version LIMIT %d",
		strings.Join(ruleVersionListColumns, ", "), database, limit)
}

// ruleVersionSQL reads one version with its content (version checked by the caller).
func ruleVersionSQL(database, version string) string {
	return fmt.Sprintf("SELECT %s, content FROM %s.rule_versions FINAL WHERE version = '%s' LIMIT 1",
		strings.Join(ruleVersionListColumns, ", "), database, version)
}

// RuleVersions returns the latest load of each recorded rule version, newest first, at most limit
// of them (0: 1000), without their content.
func (s *Store) RuleVersions(ctx context.Context, limit int) ([]RuleVersion, error) {
	return s.ruleVersionRows(ctx, "list rule versions", ruleVersionsSQL, limit)
}

// RuleLoads returns the audit trail of rule packs (rule_loads), newest first, at most limit loads
// (0: 1000): every promotion and rollback, and each version's first load by a node, with who and
// when — where RuleVersions has the latest load of each version only.
func (s *Store) RuleLoads(ctx context.Context, limit int) ([]RuleVersion, error) {
	return s.ruleVersionRows(ctx, "list rule pack loads", ruleLoadsSQL, limit)
}

// ruleVersionRows runs query (ruleVersionListColumns, at most limit rows; 0: 1000) and reads its
// rows; what names the read in errors.
func (s *Store) ruleVersionRows(ctx context.Context, what string, query func(database string, limit int) string, limit int) ([]RuleVersion, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.conn.Query(ctx, query(s.db, limit))
	if err != nil {
		return nil, fmt.Errorf("chsink: %s: %w", what, err)
	}
	defer rows.Close()
	var out []RuleVersion
	for rows.Next() {
		var v RuleVersion
		var n uint32
		if err := rows.Scan(&v.Version, &v.Name, &v.LoadedAt, &v.LoadedBy, &v.Source, &n); err != nil {
			return nil, fmt.Errorf("chsink: %s: %w", what, err)
		}
		v.RuleCount = int(n)
		v.LoadedAt = v.LoadedAt.UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: %s: %w", what, err)
	}
	return out, nil
}

// ruleLoadsSQL lists the loads, newest first.
func ruleLoadsSQL(database string, limit int) string {
	return fmt.Sprintf("SELECT %s FROM %s.rule_loads FINAL ORDER BY loaded_at DESC, version, loaded_by LIMIT %d",
		strings.Join(ruleVersionListColumns, ", "), database, limit)
}

// RuleVersion returns one recorded version with the exact content that was loaded, or an error
// wrapping ErrNoRuleVersion.
func (s *Store) RuleVersion(ctx context.Context, version string) (RuleVersion, error) {
	if !versionText.MatchString(version) {
		return RuleVersion{}, fmt.Errorf("%w: %q is not a rule pack version", ErrNoRuleVersion, version)
	}
	rows, err := s.conn.Query(ctx, ruleVersionSQL(s.db, version))
	if err != nil {
		return RuleVersion{}, fmt.Errorf("chsink: read rule version %s: %w", version, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return RuleVersion{}, fmt.Errorf("chsink: read rule version %s: %w", version, err)
		}
		return RuleVersion{}, fmt.Errorf("%w: %s", ErrNoRuleVersion, version)
	}
	var v RuleVersion
	var n uint32
	var loaded time.Time
	if err := rows.Scan(&v.Version, &v.Name, &loaded, &v.LoadedBy, &v.Source, &n, &v.Content); err != nil {
		return RuleVersion{}, fmt.Errorf("chsink: read rule version %s: %w", version, err)
	}
	v.RuleCount, v.LoadedAt = int(n), loaded.UTC()
	return v, nil
}

// Query runs a read-only statement of the caller's (riskflow rules report, the demo's analyst
// questions) on this store's connections, so that every ClickHouse connection of a process is
// opened in one place. Close the rows when done.
func (s *Store) Query(ctx context.Context, sql string) (driver.Rows, error) {
	return s.conn.Query(ctx, sql)
}

// QueryRow runs a read-only statement that answers one row.
func (s *Store) QueryRow(ctx context.Context, sql string) driver.Row {
	return s.conn.QueryRow(ctx, sql)
}
