package scoring

import (
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// The dedupe key is (app_id, event_id): unambiguous however the two strings split, and free.
var testEventKey = [2]uint64{0x0123456789abcdef, 0xfedcba9876543210}

func TestEventKey(t *testing.T) {
	pairs := [][2]string{
		{"app-a", "e1"}, {"app-b", "e1"}, {"app-a", "e2"},
		{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"},
		{"a\x00", "b"}, {"a", "\x00b"},
		{"", "e1"},
	}
	seen := map[uint64][2]string{}
	for _, p := range pairs {
		k := eventKey(testEventKey, p[0], p[1])
		if k == 0 {
			t.Errorf("eventKey(%q, %q) = 0 (zero means no event id)", p[0], p[1])
		}
		if q, dup := seen[k]; dup {
			t.Errorf("eventKey(%q, %q) = eventKey(%q, %q)", p[0], p[1], q[0], q[1])
		}
		seen[k] = p
		if eventKey(testEventKey, p[0], p[1]) != k {
			t.Errorf("eventKey(%q, %q) is not deterministic", p[0], p[1])
		}
	}
	long := string(make([]byte, 300)) // longer than xxhash's 32-byte block and any stack buffer
	if eventKey(testEventKey, long, "x") == eventKey(testEventKey, long[:299], "\x00x") {
		t.Error("long app ids collide")
	}
	if raceEnabled {
		return // the race detector changes allocation counts
	}
	app, ev := strings.Repeat("a", schemas.MaxAppIDLen), strings.Repeat("e", schemas.MaxEventIDLen) // the longest ids
	if n := testing.AllocsPerRun(100, func() { _ = eventKey(testEventKey, app, ev) }); n != 0 {
		t.Errorf("eventKey allocates %.0f times", n)
	}
}

// A tenant cannot compute another's event keys: they are keyed from the phone-hash key, so the
// same (app_id, event_id) has other keys under another key, and ids whose keys collide with
// another app's cannot be searched for offline (an unkeyed hash let them be).
func TestEventKeysAreKeyed(t *testing.T) {
	a, err := New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("key-a"))))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("key-b"))))
	if err != nil {
		t.Fatal(err)
	}
	if a.evKey == ([2]uint64{}) || a.evKey == b.evKey || a.evKey == a.phoneKey {
		t.Fatalf("event keys: %x, %x (phone keys %x)", a.evKey, b.evKey, a.phoneKey)
	}
	if eventKey(a.evKey, "app-a", "e1") == eventKey(b.evKey, "app-a", "e1") {
		t.Error("the event key does not depend on the phone-hash key")
	}
}
