package console

import (
	"fmt"
	"testing"
	"time"
)

// Failed logins are remembered per client for a minute, in a bounded map: guesses from ever more
// addresses within a minute, and logins that did not fail, must not grow it past maxTracked.
func TestLoginFailuresTrackedAreBounded(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	s := newSessions(map[string]string{"alice": "a-secret"}, func() time.Time { return now }, nil)
	for i := range 3 * maxTracked {
		if _, err := s.login(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "alice", "guess"); err != errLogin {
			t.Fatalf("guess %d: %v", i, err)
		}
		now = now.Add(time.Millisecond) // 30,000 guesses in 30 s: every one within the window
	}
	if n := len(s.fails); n > maxTracked {
		t.Errorf("%d clients tracked after guesses from %d addresses within a minute, want at most %d", n, 3*maxTracked, maxTracked)
	}
	// Logins that do not fail take no room.
	now = now.Add(failsWindow)
	for i := range 2 * maxTracked {
		if _, err := s.login(fmt.Sprintf("192.0.%d.%d", i>>8&255, i&255), "alice", "a-secret"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if n := len(s.fails); n > maxTracked {
		t.Errorf("%d clients tracked after %d successful logins, want at most %d", n, 2*maxTracked, maxTracked)
	}
	// The throttle still holds for a client guessing now.
	for range maxFails {
		s.login("203.0.113.9", "alice", "guess")
	}
	if _, err := s.login("203.0.113.9", "alice", "a-secret"); err != errThrottled {
		t.Errorf("login after %d failures: %v, want throttled", maxFails, err)
	}
}

// A failed login asks whether the credentials are an app key's whatever the name: asked only for
// a name that is no admin's, the extra constant-time comparison made the answer's timing tell an
// admin's name from any other, as login's single comparison against a never-matching secret is
// there to prevent.
func TestFailedLoginAsksForAnAppKeyWhateverTheName(t *testing.T) {
	asked := map[string]int{}
	s := newSessions(map[string]string{"alice": "a-secret"}, time.Now, func(name, _ string) bool { asked[name]++; return false })
	for _, who := range []string{"alice", "mallory"} {
		if _, err := s.login("192.0.2.1", who, "guess"); err != errLogin {
			t.Fatalf("%s with a wrong secret: %v, want errLogin", who, err)
		}
		if asked[who] != 1 {
			t.Errorf("%s with a wrong secret: app keys asked %d times, want 1 (as for any name)", who, asked[who])
		}
	}
}
