//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
)

// A version rule_versions does not hold is named in the error as an excerpt: what was typed may
// hold a number (the CLI checks the form first; POST /v1/rules/rollback and the console reach
// the same lookup).
func TestRollbackUnknownVersionIsNotEchoed(t *testing.T) {
	cleanEnv(t)
	addr, db, _, _ := throwawayDatabase(t, "rollback_cli")
	c := Default().ClickHouse
	c.Addr, c.Database = addr, db
	vs := newVersionStore(c, nil, nil)
	for _, v := range []string{"0123456789abcdef", "13812345678", "zz'; DROP TABLE x"} {
		_, err := vs.Lookup(context.Background(), v)
		if err == nil || !strings.Contains(err.Error(), "unknown rule pack version") {
			t.Errorf("%q: %v, want unknown rule pack version", v, err)
			continue
		}
		if strings.Contains(err.Error(), "13812345678") {
			t.Errorf("%q: the error shows the number: %v", v, err)
		}
	}
}
