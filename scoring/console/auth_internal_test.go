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
