package scoring

import "testing"

// The dedupe key is (app_id, event_id): unambiguous however the two strings split, and free.
func TestEventKey(t *testing.T) {
	pairs := [][2]string{
		{"app-a", "e1"}, {"app-b", "e1"}, {"app-a", "e2"},
		{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"},
		{"a\x00", "b"}, {"a", "\x00b"},
		{"", "e1"},
	}
	seen := map[uint64][2]string{}
	for _, p := range pairs {
		k := eventKey(p[0], p[1])
		if k == 0 {
			t.Errorf("eventKey(%q, %q) = 0 (zero means no event id)", p[0], p[1])
		}
		if q, dup := seen[k]; dup {
			t.Errorf("eventKey(%q, %q) = eventKey(%q, %q)", p[0], p[1], q[0], q[1])
		}
		seen[k] = p
		if eventKey(p[0], p[1]) != k {
			t.Errorf("eventKey(%q, %q) is not deterministic", p[0], p[1])
		}
	}
	long := string(make([]byte, 300)) // longer than xxhash's 32-byte block and any stack buffer
	if eventKey(long, "x") == eventKey(long[:299], "\x00x") {
		t.Error("long app ids collide")
	}
	if raceEnabled {
		return // the race detector changes allocation counts
	}
	if n := testing.AllocsPerRun(100, func() { _ = eventKey("app-7c41d9", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f") }); n != 0 {
		t.Errorf("eventKey allocates %.0f times", n)
	}
}
