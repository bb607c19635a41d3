package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
)

// benchOnly is bench's command line with every part off but the ones named, on a small state.
func benchOnly(parts ...string) []string {
	args := []string{"bench", "--phones", "5000", "--ips", "100", "--duration", "100ms", "--conns", "2"}
	for _, p := range []string{"api", "decisions", "memory", "pipeline", "scorers", "freshness", "archiver", "history"} {
		on := false
		for _, q := range parts {
			on = on || q == p
		}
		if !on {
			args = append(args, "--"+p+"=false")
		}
	}
	return args
}

// A bench told to stop reports no figures: the API part warmed its million phones to the end (tens
// of seconds after a Ctrl-C) and then printed 0 req/s and ratios of 0.00 against its targets, and the
// memory part ran its two days of traffic (a minute) and printed them, before the error.
func TestBenchStoppedPrintsNoFigures(t *testing.T) {
	cleanEnv(t)
	for _, part := range []string{"api", "memory"} {
		t.Run(part, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a Ctrl-C before the part's first step
			r := runCmd(t, ctx, benchOnly(part)...)
			if r.code != 1 || !strings.Contains(r.stderr, "riskflow: interrupted: bench "+part+": ") {
				t.Errorf("exit %d, want 1 saying bench %s was interrupted\nstderr: %s", r.code, part, r.stderr)
			}
			for _, figure := range []string{"req/s", "ratio", "bytes per", "heap"} {
				if strings.Contains(r.stdout, figure) {
					t.Errorf("stdout shows figures of a run cut short (%q):\n%s", figure, r.stdout)
				}
			}
		})
	}
}

// A bench interrupted while a Kafka part waits on the broker says it was interrupted, not "is Kafka
// up? deploy/local/up": the broker was fine, the user pressed Ctrl-C.
func TestBenchStoppedDoesNotBlameKafka(t *testing.T) {
	cleanEnv(t)
	broker := testaddr.NewHung(t) // a broker that takes the connection and has not answered yet
	t.Setenv("RISKFLOW_KAFKA_BROKERS", broker.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runCmd(t, ctx, benchOnly("pipeline")...) }()
	select {
	case <-broker.Asked():
	case r := <-done:
		t.Fatalf("bench ended before asking the broker: exit %d\n%s", r.code, r.stderr)
	}
	cancel()
	r := <-done
	if r.code != 1 || !strings.Contains(r.stderr, "riskflow: interrupted: bench pipeline: ") {
		t.Errorf("exit %d, want 1 saying bench pipeline was interrupted\nstderr: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "Kafka up") {
		t.Errorf("an interrupted bench sends the user to check Kafka:\n%s", r.stderr)
	}
}

// dev stopped by Ctrl-C or SIGTERM says it stopped, as serve does: it said nothing, its last line
// the scorer's "running".
func TestDevSaysItStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errw syncbuf.Buffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"dev", "--listen", "127.0.0.1:0", "--sample=false"}, &out, &errw) }()
	for !strings.Contains(errw.String(), `msg="api listening"`) {
		select {
		case c := <-code:
			t.Fatalf("dev ended: exit %d\n%s", c, errw.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("exit %d\n%s", c, errw.String())
	}
	lines := strings.Split(strings.TrimSpace(errw.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `msg="riskflow dev stopped"`) {
		t.Errorf("the last line is %q, want riskflow dev stopped\n%s", last, errw.String())
	}
}

// dev and serve stopped by Ctrl-C while they start say they stopped, as the README has it ("also
// while starting"): they exited 0 with their last log line "api address listening while the
// process starts", which reads as a process still running.
func TestStoppedWhileStartingSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"dev", []string{"dev", "--listen", "127.0.0.1:0", "--sample=false"}, `msg="riskflow dev stopped"`},
		{"serve", []string{"serve", "--roles", "scorer"}, `msg="riskflow stopped"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cleanEnv(t)
			broker := testaddr.NewHung(t) // serve's broker: taken connections, no answers
			t.Setenv("RISKFLOW_KAFKA_BROKERS", broker.Addr)
			t.Setenv("RISKFLOW_SCORING_PHONE_HASH_KEY", "a-test-key-of-sixteen-bytes-or-more")
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a Ctrl-C before the roles have started
			r := runCmd(t, ctx, c.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, want 0\n%s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, c.want) {
				t.Errorf("the last line is %q, want %s\n%s", last, c.want, r.stderr)
			}
		})
	}
}

// A one-shot command stopped by Ctrl-C while it waits on a server that has taken the connection
// does not send the user to check that server, as bench does not: produce, loadgen and migrate
// ended with "(is Kafka running there? …)" or "(the server took the connection and did not
// answer: ClickHouse hung or overloaded, …)" after the interruption. loadgen stops cleanly, as
// the README says, saying it sent nothing.
func TestInterruptedWhileWaitingDoesNotBlameTheServer(t *testing.T) {
	for _, c := range []struct {
		name     string
		args     func(addr string) []string
		code     int
		want     string
		notWants []string
	}{
		{"produce", func(addr string) []string {
			return []string{"produce", "-", "--set", "kafka.brokers=" + addr}
		}, 1, "riskflow: interrupted: ", []string{"Kafka running"}},
		{"loadgen", func(addr string) []string {
			return []string{"loadgen", "--out", "kafka", "--duration", "1m", "--set", "kafka.brokers=" + addr}
		}, 0, "loadgen: 0 events sent (0 attack), stopped before --duration's end", []string{"Kafka running", "riskflow:"}},
		{"migrate", func(addr string) []string {
			return []string{"migrate", "--set", "clickhouse.addr=" + addr}
		}, 1, "riskflow: interrupted: ", []string{"hung or overloaded", "ClickHouse running"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("RISKFLOW_SCORING_PHONE_HASH_KEY", "a-test-key-of-sixteen-bytes-or-more")
			server := testaddr.NewHung(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan result, 1)
			go func() { done <- runCmd(t, ctx, c.args(server.Addr)...) }()
			select {
			case <-server.Asked():
			case r := <-done:
				t.Fatalf("ended before asking the server: exit %d\n%s", r.code, r.stderr)
			}
			cancel()
			r := <-done
			out := r.stdout + r.stderr
			if r.code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d saying %q\nstdout: %s\nstderr: %s", r.code, c.code, c.want, r.stdout, r.stderr)
			}
			for _, nw := range c.notWants {
				if strings.Contains(out, nw) {
					t.Errorf("an interrupted %s says %q:\n%s", c.name, nw, out)
				}
			}
		})
	}
}

// rules test stops at a Ctrl-C, as every command does: it ran every test to the end first (eight
// tests of 100,000 given events each went on for 98 s after the Ctrl-C), then printed their
// results under "interrupted". Stopped, it prints no summary that reads as a finished run.
func TestRulesTestStops(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	pack, err := os.ReadFile("../../rules/packs/default/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := "tests:\n  - name: many\n    given:\n      - {phone: \"13800138000\", ip: \"223.104.3.7\", count: 100000, vary: phone}\n    event: {phone: \"13800138000\", ip: \"223.104.3.7\"}\n    expect: {score: 900}\n"
	for _, f := range []struct{ name, data string }{{"rules.yaml", string(pack)}, {"tests.yaml", tests}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a Ctrl-C before the first test ends
	r := runCmd(t, ctx, "rules", "test", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "riskflow: interrupted: rules test: ") {
		t.Errorf("exit %d, want 1 saying rules test was interrupted\nstderr: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "passed") || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("an interrupted rules test prints results:\n%s", r.stdout)
	}
}
