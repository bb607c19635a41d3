//go:build integration

package e2e

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// Stop ClickHouse for 20 s mid-stream: the breaker opens, scoring continues (risk.scores keeps
// growing), and after the restart every row arrives.
func TestClickHouseOutage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addr := testaddr.Free(t)
	e.start("scorer,archiver,api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/healthz")

	const n = 15000
	now := time.Now().Add(-time.Hour)
	w := e.writer()
	var sent atomic.Int64
	done := make(chan struct{})
	go func() { // a steady stream over ~40 s
		defer close(done)
		for i := 0; i < n; i += 150 {
			var vs [][]byte
			for k := i; k < min(i+150, n); k++ {
				vs = append(vs, event(k, now.Add(time.Duration(k)*time.Millisecond)))
			}
			e.produce(ctx, w, vs)
			sent.Add(int64(len(vs)))
			time.Sleep(400 * time.Millisecond)
		}
	}()

	// Mid-stream: rows are arriving, then ClickHouse goes away.
	if got := e.waitCount(ctx, exactlyOnceQuery, 1000, time.Minute); got < 1000 {
		t.Fatalf("only %d rows archived before the outage", got)
	}
	clickhouseCtl(t, "stop")
	stopped := true
	defer func() {
		if stopped {
			clickhouseCtl(t, "start")
		}
	}()
	scoredAtStop := topicEnd(t, e.scores)
	sawOpen := false
	outageEnd := time.Now().Add(20 * time.Second)
	for time.Now().Before(outageEnd) {
		if metric(t, addr, `riskflow_breaker_state{breaker="archiver",state="open"}`) == "1" {
			sawOpen = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	scoredAtRestart := topicEnd(t, e.scores)
	clickhouseCtl(t, "start")
	stopped = false
	if !sawOpen {
		t.Errorf("the ClickHouse breaker never reported open during a 20 s outage")
	}
	if scoredAtRestart <= scoredAtStop {
		t.Errorf("scoring stopped during the ClickHouse outage: risk.scores %d → %d", scoredAtStop, scoredAtRestart)
	}
	t.Logf("risk.scores grew %d → %d while ClickHouse was down", scoredAtStop, scoredAtRestart)
	<-done

	if got := e.waitCount(ctx, exactlyOnceQuery, n, 3*time.Minute); got != n {
		t.Fatalf("risk_scores FINAL after the outage: %d, want %d", got, n)
	}
	if v := metric(t, addr, `riskflow_breaker_state{breaker="archiver",state="closed"}`); v != "1" {
		t.Errorf("breaker did not close after ClickHouse came back (closed=%q)", v)
	}
}

func clickhouseCtl(t *testing.T, action string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "deploy", "local", "clickhouse.sh"), action)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse.sh %s: %v\n%s", action, err, out)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within a minute", url)
}

// metric returns the value of one exposition line ("" when absent).
func metric(t *testing.T, addr, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, series))
		}
	}
	return ""
}
