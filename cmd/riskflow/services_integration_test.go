//go:build integration || browser

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/riskflow/riskflow/pipeline/chsink"
)

// The services' addresses as make test gave them, read as the test binary starts: most tests
// here call cleanEnv first, which unsets every RISKFLOW_ variable, and testServices read them
// after it — so with services on other ports (RISKFLOW_KAFKA_PORT=16092 …) those tests dialled
// the default ones, and failed, or used whatever other services listened there.
var servicesClickHouse, servicesKafka = os.Getenv("RISKFLOW_CLICKHOUSE_ADDR"), os.Getenv("RISKFLOW_KAFKA_BROKERS")

// testServices is where the local services of deploy/local listen (RISKFLOW_CLICKHOUSE_ADDR,
// RISKFLOW_KAFKA_BROKERS, else their default ports).
func testServices() (clickhouseAddr, kafkaBrokers string) {
	clickhouseAddr, kafkaBrokers = servicesClickHouse, servicesKafka
	if clickhouseAddr == "" {
		clickhouseAddr = "127.0.0.1:19000"
	}
	if kafkaBrokers == "" {
		kafkaBrokers = "127.0.0.1:19092"
	}
	return clickhouseAddr, kafkaBrokers
}

// throwawayDatabase names a fresh database prefix_<id> on the local ClickHouse, dropped when the
// test ends, and returns the server's address, the database and the random id (for other names of
// the test's world: topics, groups), with a connection to the server (closed when the test ends).
func throwawayDatabase(t testing.TB, prefix string) (addr, db, id string, conn driver.Conn) {
	t.Helper()
	addr, _ = testServices()
	b := make([]byte, 4)
	rand.Read(b)
	id = hex.EncodeToString(b)
	db = prefix + "_" + id
	c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); c.Close() })
	conn = c
	return addr, db, id, conn
}

// migratedDatabase is throwawayDatabase with every migration applied, and a store on it (closed
// when the test ends).
func migratedDatabase(t testing.TB, prefix string) (addr, db string, conn driver.Conn, st *chsink.Store) {
	t.Helper()
	addr, db, _, conn = throwawayDatabase(t, prefix)
	ctx := context.Background()
	st, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate (is ClickHouse up? deploy/local/up): %v", err)
	}
	return addr, db, conn, st
}
