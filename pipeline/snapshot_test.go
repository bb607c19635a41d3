package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

func stateWith(n int) *features.State {
	st := features.New(features.Config{})
	t0 := features.Sec(time.Now().Add(-time.Hour))
	for i := 1; i <= n; i++ {
		st.Apply(&features.Keys{EventID: uint64(i), T: t0 + uint32(i), Phone: uint64(1000 + i%7), IP: 42})
	}
	return st
}

// Save then Load restores the state and the offsets it covers; the previous snapshot is kept and
// used when the newest is damaged; a snapshot of another key or topic is refused and leaves the
// state empty.
func TestSnapshotsSaveLoadAndFallBack(t *testing.T) {
	dir := t.TempDir()
	src := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(50), Log: quiet()}
	if _, err := src.Save(func() map[int]int64 { return map[int]int64{0: 10, 1: 20} }); err != nil {
		t.Fatal(err)
	}
	src.State = stateWith(80)
	if _, err := src.Save(func() map[int]int64 { return map[int]int64{0: 30, 1: 40} }); err != nil {
		t.Fatal(err)
	}
	load := func(fp, topic string) (*features.State, map[int]int64, error) {
		st := features.New(features.Config{})
		offs, _, err := (&Snapshots{Dir: dir, Topic: topic, Fingerprint: fp, State: st, Log: quiet()}).Load()
		return st, offs, err
	}
	st, offs, err := load("key-a", "verify.events")
	if err != nil || offs[0] != 30 || offs[1] != 40 || st.Stats().Applied != 80 {
		t.Fatalf("newest: offsets %v, applied %d, err %v", offs, st.Stats().Applied, err)
	}
	// Damage the newest: the previous one is used.
	p := filepath.Join(dir, "features-verify.events.snap")
	b, _ := os.ReadFile(p)
	b[len(b)/3] ^= 0xff
	os.WriteFile(p, b, 0o600)
	st, offs, err = load("key-a", "verify.events")
	if err != nil || offs[0] != 10 || st.Stats().Applied != 50 {
		t.Fatalf("fallback: offsets %v, applied %d, err %v", offs, st.Stats().Applied, err)
	}
	// Another key or topic (a file copied from another deployment): refused, nothing loaded.
	prev, _ := os.ReadFile(p + ".prev")
	os.WriteFile(filepath.Join(dir, "features-other.events.snap"), prev, 0o600)
	for _, c := range [][2]string{{"key-b", "verify.events"}, {"key-a", "other.events"}} {
		st, _, err = load(c[0], c[1])
		if err == nil || errors.Is(err, ErrNoSnapshot) || st.Stats().Applied != 0 {
			t.Errorf("%v: err %v, applied %d: want a refusal and an empty state", c, err, st.Stats().Applied)
		}
	}
	if _, _, err := (&Snapshots{Dir: t.TempDir(), Topic: "t", State: features.New(features.Config{}), Log: quiet()}).Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("empty dir: %v, want ErrNoSnapshot", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".features-*.tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
