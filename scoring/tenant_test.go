package scoring_test

import (
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// Event ids are unique per app, not across apps: the feature state dedupes by (app_id, event_id),
// so app B reusing app A's event ids does not make A's attempts (or B's) vanish from any window,
// per-app or shared (per IP, per phone), while a true re-delivery (same app, same id) is still
// counted once.
func TestEventIDsAreScopedByApp(t *testing.T) {
	const phone2 = "13900139000"
	vars := []string{"app_verifies_10m", "ip_verifies_10m", "ip_phones_10m", "phone_verifies_10m"}
	s := newScorer(t, scoring.Config{}, probePack(vars...))
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }
	a := func(id string, i int) (ev schemas.VerifyEvent) {
		ev = event(id, at(i), phone1, ip1)
		ev.AppID = "app-a"
		return ev
	}
	b := func(id string, i int) (ev schemas.VerifyEvent) {
		ev = event(id, at(i), phone2, ip1) // the same IP as app A's attempts: a shared window
		ev.AppID = "app-b"
		return ev
	}
	check := func(name string, got map[string]string, want ...string) {
		t.Helper()
		for i, v := range vars {
			if got[v] != want[i] {
				t.Errorf("%s: %s = %s, want %s (all: %v)", name, v, got[v], want[i], got)
			}
		}
	}

	// vars: app_verifies_10m, ip_verifies_10m, ip_phones_10m, phone_verifies_10m
	check("A e1", probes(process(t, s, a("e1", 0)).Hits), "1", "1", "1", "1")
	check("A e2", probes(process(t, s, a("e2", 1)).Hits), "2", "2", "1", "2")
	// B reuses A's ids: distinct events, counted in B's app window and in the shared IP window.
	check("B e1", probes(process(t, s, b("e1", 2)).Hits), "1", "3", "2", "1")
	check("B e2", probes(process(t, s, b("e2", 3)).Hits), "2", "4", "2", "2")
	// A's next attempt still sees both of its earlier ones, and B's on the shared IP.
	check("A e3", probes(process(t, s, a("e3", 4)).Hits), "3", "5", "2", "3")
	if got := s.State().Stats().Applied; got != 5 {
		t.Errorf("Applied = %d, want 5 (every event of both apps)", got)
	}

	// A true re-delivery (same app, same id) is scored as of its own time and not counted again,
	// in either app.
	before := s.State().Stats()
	check("A e2 again", probes(process(t, s, a("e2", 1)).Hits), "2", "2", "1", "2")
	check("B e1 again", probes(process(t, s, b("e1", 2)).Hits), "1", "3", "2", "1")
	if st := s.State().Stats(); st != before {
		t.Errorf("re-deliveries changed the state: %+v → %+v", before, st)
	}

	// Apply (replica feed, restart replay) follows the same key.
	c := a("e1", 5)
	c.AppID = "app-c"
	if ev := a("e1", 0); s.Apply(&ev) {
		t.Error("Apply of A's e1 again = true, want false (a re-delivery)")
	}
	if !s.Apply(&c) {
		t.Error("Apply of app C's e1 = false: another app's event id hid it")
	}
	if s.Apply(&c) {
		t.Error("Apply of app C's e1 twice = true")
	}
	if got := s.State().Stats().Applied; got != 6 {
		t.Errorf("Applied = %d, want 6", got)
	}
}
