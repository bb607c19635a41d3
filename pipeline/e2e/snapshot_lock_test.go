//go:build integration

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// Two processes started with one scoring.snapshot_dir (a scorer and an API replica from one
// configuration on one host) rotated each other's snapshots out and failed each other's writes
// ("feature snapshot failed … keep the previous one: rename …: no such file or directory", held-out
// run with two scorers at snapshot_interval=1s). The second now refuses to start (exit 2), naming
// the key, the directory and the process holding it; the first runs on, and once it is gone —
// even SIGKILLed — the directory is free again.
func TestSecondProcessOnOneSnapshotDirectoryIsRefused(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	snap := []string{"--set", "scoring.snapshot_dir=" + dir, "--set", "scoring.snapshot_interval=1s"}

	first := e.start("scorer", append(snap, "--set", "ops.listen="+testaddr.Free(t))...)
	first.waitLog(t, "scorer running", 90*time.Second)

	second := e.start("api", append(snap, "--listen", testaddr.Free(t))...)
	select {
	case <-second.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("a second process on the snapshot directory %s runs:\n%s", dir, tail(second.log, 20))
	}
	if code := second.cmd.ProcessState.ExitCode(); code != 2 {
		t.Errorf("second process exited %d, want 2 (configuration)", code)
	}
	out := second.log.String()
	for _, want := range []string{"scoring.snapshot_dir", dir, e.events, fmt.Sprintf("pid %d", first.cmd.Process.Pid)} {
		// Errors are masked on the way out: a temporary directory's random digits can read as
		// a phone number.
		if !strings.Contains(out, schemas.MaskPhones(want)) {
			t.Errorf("the refusal does not name %q:\n%s", want, tail(second.log, 5))
		}
	}
	first.waitLog(t, "feature snapshot written", 60*time.Second)
	if !first.alive() {
		t.Fatalf("the first process stopped:\n%s", tail(first.log, 20))
	}

	first.stop(syscall.SIGKILL)
	third := e.start("api", append(snap, "--listen", testaddr.Free(t))...)
	third.waitLog(t, "feature snapshot loaded", 90*time.Second)
	if strings.Contains(first.log.String(), "feature snapshot failed") {
		t.Errorf("the first process's snapshots failed:\n%s", tail(first.log, 20))
	}
}

// A node killed while writing its snapshot (an OOM kill at the write's memory peak) and restarted
// seconds later found the temporary file too recent to remove — another process sharing the
// directory might have been writing it — and kept it for ten minutes: a kill per restart, one
// more snapshot's size on the volume each time. Holding the directory's lock, a node knows no
// other process writes there and removes it at start.
func TestRestartRemovesTheSnapshotAKillLeftBehind(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	left := filepath.Join(dir, ".features-"+e.events+"-4242.tmp") // as a process killed mid-write leaves it
	if err := os.WriteFile(left, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.start("scorer", "--set", "scoring.snapshot_dir="+dir, "--set", "ops.listen="+testaddr.Free(t))
	p.waitLog(t, "scorer running", 90*time.Second)
	if _, err := os.Stat(left); err == nil {
		t.Fatalf("the partly written snapshot of a killed process is still in %s after the restart:\n%s", dir, tail(p.log, 20))
	}
	if !strings.Contains(p.log.String(), "removed a partly written feature snapshot") {
		t.Errorf("the removal is not logged:\n%s", tail(p.log, 20))
	}
}
