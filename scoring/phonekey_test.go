package scoring

import (
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/features"
)

// The state keys phones with a hash keyed by the phone-hash key: the same number gets the same key
// under the same phone-hash key (so restarts and replicas agree), another key under another
// phone-hash key, and never the unkeyed hash anyone could compute from the number alone. The
// members other keys' entries store (the phones seen on an IP) follow, and list entries by phone
// are keyed the same way, so a blocked number is still found.
func TestPhoneKeysAreKeyed(t *testing.T) {
	mk := func(key string) *Scorer {
		s, err := New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte(key))))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, a2, b := mk("key-a"), mk("key-a"), mk("key-b")
	for _, phone := range []string{"13800138000", "13800138001", "1440123456789"} {
		ka, kb := a.phoneKeyOf(phone), b.phoneKeyOf(phone)
		if ka != a2.phoneKeyOf(phone) {
			t.Errorf("%s: two scorers under one key disagree", phone)
		}
		if ka == kb {
			t.Errorf("%s: the same state key under two phone-hash keys", phone)
		}
		if plain := xxhash.Sum64String(phone); ka == plain || kb == plain {
			t.Errorf("%s: the state key is the unkeyed hash", phone)
		}
	}
	if a.KeyFingerprint() != a2.KeyFingerprint() || a.KeyFingerprint() == b.KeyFingerprint() {
		t.Errorf("fingerprints: %s %s %s", a.KeyFingerprint(), a2.KeyFingerprint(), b.KeyFingerprint())
	}
	if fp := a.KeyFingerprint(); strings.Contains(a.hasher.Hex("13800138000"), fp) {
		t.Errorf("the fingerprint %s is a phone hash", fp)
	}

	// Applied events: the phone key in the state is the keyed one, and so is the member on the IP.
	ev := schemas.VerifyEvent{EventID: "e1", TS: time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC), AppID: "app",
		Flow: schemas.FlowOneClickLogin, Phone: "13800138000", Outcome: schemas.OutcomeSuccess}
	a.Apply(&ev)
	at := features.Sec(ev.TS)
	if n := a.state.Count(features.KindPhone, a.phoneKeyOf(ev.Phone), at, 60, false, false, false); n != 1 {
		t.Errorf("keyed phone key counts %d, want 1", n)
	}
	if n := a.state.Count(features.KindPhone, nz(xxhash.Sum64String(ev.Phone)), at, 60, false, false, false); n != 0 {
		t.Errorf("unkeyed phone key counts %d, want 0", n)
	}
	if n := a.state.Distinct(features.KindApp, nz(xxhash.Sum64String("app")), at, 60, features.FieldA, features.Member(a.phoneKeyOf(ev.Phone))); n != 1 {
		t.Errorf("the app's phones, counting the keyed member again: %d, want 1", n)
	}

	// Lists: a blocked number is found whatever the key, and whichever option came first.
	l, err := ParseLists(strings.NewReader("block phone 13800138000\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Scorer{
		must(New(Config{}, WithLists(l), WithPhoneHasher(schemas.NewPhoneHasher([]byte("key-a"))))),
		must(New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("key-b"))), WithLists(l))),
	} {
		in := s.get(&ev)
		if in.lists.phone != "block" {
			t.Errorf("blocked number not found under key %s: %q", s.KeyFingerprint(), in.lists.phone)
		}
		s.put(in)
	}
}

func must(s *Scorer, err error) *Scorer {
	if err != nil {
		panic(err)
	}
	return s
}

// BenchmarkPhoneKey compares the keyed phone key with the unkeyed hash it replaced, in one run.
func BenchmarkPhoneKey(b *testing.B) {
	s := must(New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("bench-key")))))
	phones := []string{"13800138000", "13912345678", "1440123456789", "15000000001"}
	var sink uint64
	b.Run("siphash-keyed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sink += s.phoneKeyOf(phones[i&3])
		}
	})
	b.Run("xxhash-unkeyed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sink += xxhash.Sum64String(phones[i&3])
		}
	})
	_ = sink
}
