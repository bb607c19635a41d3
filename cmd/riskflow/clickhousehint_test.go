package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// Commands that use ClickHouse say what to check when they cannot: a migrate against an address
// nothing listens on names clickhouse.addr and what starts a server, not only "dial tcp …:
// connection refused"; against a port that takes the connection and never answers the native
// hello (ClickHouse's HTTP port, or a server that hangs), both.
func TestClickHouseCommandsSayWhatToCheck(t *testing.T) {
	cleanEnv(t)
	refused := testaddr.Free(t)
	r := runCmd(t, context.Background(), "migrate", "--set", "clickhouse.addr="+refused)
	if r.code != 1 || !strings.Contains(r.stderr, "clickhouse.addr "+refused+": ") || !strings.Contains(r.stderr, "deploy/local/up") {
		t.Errorf("migrate against %s (nothing listening): exit %d, want 1 naming clickhouse.addr and deploy/local/up: %s", refused, r.code, r.stderr)
	}

	hung := testaddr.NewHung(t) // takes the connection, never answers
	r = runCmd(t, context.Background(), "migrate", "--set", "clickhouse.addr="+hung.Addr, "--set", "clickhouse.write_timeout=300ms", "--set", "clickhouse.dial_timeout=300ms")
	// A ClickHouse that hangs in an outage looks the same: the hint names both causes (it named
	// the port only, and label and lookup told an operator in an outage to check the port).
	if r.code != 1 || !strings.Contains(r.stderr, "native protocol port") || !strings.Contains(r.stderr, "ClickHouse hung or overloaded") {
		t.Errorf("migrate against a port that never answers: exit %d, want 1 saying the server may hang or clickhouse.addr be its HTTP port: %s", r.code, r.stderr)
	}
}

// rules versions, --loads and rollback, which read ClickHouse through the console's store, say what
// to check as migrate does (the cause was flattened to text there, and the hint was lost).
func TestRulesHistoryCommandsSayWhatToCheck(t *testing.T) {
	cleanEnv(t)
	refused := testaddr.Free(t)
	for _, args := range [][]string{{"rules", "versions"}, {"rules", "versions", "--loads"}, {"rules", "rollback", "0123456789abcdef", "--set", "scoring.rules=" + tempDir(t) + "/rules.yaml"}} {
		r := runCmd(t, context.Background(), append(args, "--set", "clickhouse.addr="+refused)...)
		if r.code != 1 || !strings.Contains(r.stderr, "clickhouse.addr "+refused+": ") || !strings.Contains(r.stderr, "is ClickHouse running there? deploy/local/up") {
			t.Errorf("%v against %s (nothing listening): exit %d, want 1 naming clickhouse.addr and deploy/local/up: %s", args, refused, r.code, r.stderr)
		}
	}
}

// Credentials the server refuses (18.16's codes and current releases' one) name the keys to check.
func TestClickHouseHintNamesCredentials(t *testing.T) {
	for _, code := range []int32{192, 193, 516} {
		err := clickhouseHint(fmt.Errorf("migrate: %w", &clickhouse.Exception{Code: code, Message: "refused"}))
		if !strings.Contains(err.Error(), "clickhouse.username and clickhouse.password") {
			t.Errorf("code %d: %v", code, err)
		}
	}
	if err := clickhouseHint(&clickhouse.Exception{Code: 60, Message: "no table"}); strings.Contains(err.Error(), "(") {
		t.Errorf("an unrelated server error got a hint: %v", err)
	}
}
