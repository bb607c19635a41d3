package chsink

import (
	"context"
	"fmt"
	"time"
)

// ConsoleItem is one row of console_state: a piece of the console's working state (a draft, a
// promotion request, a backtest run, a request to cancel one), shared by every node.
type ConsoleItem struct {
	Kind, ID    string
	UpdatedAt   time.Time // the latest write of a (Kind, ID) wins
	Node, Admin string
	Deleted     bool
	Body        string
}

var consoleStateColumns = []string{"kind", "id", "updated_ns", "node", "admin", "deleted", "body"}

// PutConsoleItem writes it; reads see it at once (one INSERT, acknowledged).
func (s *Store) PutConsoleItem(ctx context.Context, it ConsoleItem) error {
	if it.Kind == "" || it.ID == "" {
		return fmt.Errorf("chsink: console state: kind and id are required")
	}
	var del uint8
	if it.Deleted {
		del = 1
	}
	row := []any{it.Kind, it.ID, uint64(it.UpdatedAt.UnixNano()), it.Node, it.Admin, del, it.Body}
	return s.insert(ctx, "console_state", consoleStateColumns, 1, func(int) ([]any, error) { return row, nil })
}

// consoleStateSQL reads the latest write of each id of one kind (or of one id), without removed
// items. argMax rather than FINAL: it does not depend on merges, and the table is small.
func consoleStateSQL(database string, oneID bool) string {
	where := "kind = ?"
	if oneID {
		where += " AND id = ?"
	}
	return "SELECT id, max(updated_ns) AS at, argMax(node, updated_ns), argMax(admin, updated_ns), argMax(body, updated_ns) FROM " +
		database + ".console_state WHERE " + where + " GROUP BY id HAVING argMax(deleted, updated_ns) = 0"
}

// ConsoleItems returns the items of one kind, or the one item id when id is not "" (none: an
// empty slice), without removed ones.
func (s *Store) ConsoleItems(ctx context.Context, kind, id string) ([]ConsoleItem, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	args := []any{kind}
	if id != "" {
		args = append(args, id)
	}
	rows, err := s.conn.Query(ctx, consoleStateSQL(s.db, id != ""), args...)
	if err != nil {
		return nil, fmt.Errorf("chsink: read console state %s: %w", kind, err)
	}
	defer rows.Close()
	var out []ConsoleItem
	for rows.Next() {
		it := ConsoleItem{Kind: kind}
		var ns uint64
		if err := rows.Scan(&it.ID, &ns, &it.Node, &it.Admin, &it.Body); err != nil {
			return nil, fmt.Errorf("chsink: read console state %s: %w", kind, err)
		}
		it.UpdatedAt = time.Unix(0, int64(ns)).UTC()
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: read console state %s: %w", kind, err)
	}
	return out, nil
}
