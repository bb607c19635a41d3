package scoring_test

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/riskflow/riskflow/scoring"
)

// An app's own windows (app_ip_*, app_prefix_*) are keyed by (app, key). When the app's part was
// an unkeyed hash of its id, one tenant could compute, from the public code and the two app ids,
// an IPv6 /64 whose per-app key in its own app equals another app's key for one of that app's
// addresses (an unkeyed xxhash of 8 bytes is a bijection, and the per-app fold is invertible):
// thirty failed attempts app-a published from that address counted in app-b's windows of
// 1.2.3.4, and app-b's users there got phones_per_ip (600, "32 phones and 30 failures … in this
// app from this IP"). App keys are keyed hashes now: the computation below finds nothing.
func TestAnotherAppCannotComputeAnAddressInsideYourAppWindows(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	victim := netip.MustParseAddr("1.2.3.4")
	crafted := craftedAddress("app-a", "app-b", victim)
	for i := range 30 {
		ev := event(fmt.Sprintf("a%d", i), t0, fmt.Sprintf("1370002%04d", i), crafted.String())
		ev.AppID, ev.Outcome, ev.DeviceID = "app-a", "fail", fmt.Sprintf("dev-%d", i)
		if !s.Apply(&ev) {
			t.Fatalf("event %d not applied", i)
		}
	}
	windows := func(ip netip.Addr, app string) map[string]int64 {
		t.Helper()
		x, err := s.Explain(scoring.Subject{IP: ip, AppID: app})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, w := range x.Windows {
			m[w.Name] = w.Value
		}
		return m
	}
	if got := windows(crafted, "app-a")["app_ip_phones_10m"]; got != 30 {
		t.Fatalf("app-a's own app_ip_phones_10m at %s = %d, want 30", crafted, got)
	}
	for _, name := range []string{"app_ip_phones_10m", "app_ip_fails_10m", "app_ip_verifies_10m", "app_ip_devices_10m"} {
		if got := windows(victim, "app-b")[name]; got != 0 {
			t.Errorf("app-b's %s at %s = %d after app-a's attempts from %s, want 0", name, victim, got, crafted)
		}
	}
}

// craftedAddress is what a tenant computes to reach victimApp's per-app windows of victimIP from
// its own app, assuming unkeyed xxhash app keys: an IPv6 /64 whose address key k satisfies
// hash(app)·φ ⊕ k = hash(victimApp)·φ ⊕ key(victimIP).
func craftedAddress(app, victimApp string, victimIP netip.Addr) netip.Addr {
	const phi, v6 = 0x9e3779b97f4a7c15, 0x3c6ef372fe94f82b
	b := victimIP.As4()
	ky := uint64(1)<<40 | uint64(binary.BigEndian.Uint32(b[:]))
	kx := xxhash.Sum64String(app)*phi ^ xxhash.Sum64String(victimApp)*phi ^ ky
	var a [16]byte
	binary.LittleEndian.PutUint64(a[:8], unXXH64of8(kx^v6))
	a[15] = 1
	if xxhash.Sum64(a[:8])^v6 != kx {
		panic("unXXH64of8 is not the inverse of xxhash.Sum64 of 8 bytes")
	}
	return netip.AddrFrom16(a)
}

// unXXH64of8 returns the little-endian 8-byte input whose XXH64 (seed 0) is h.
func unXXH64of8(h uint64) uint64 {
	const p1, p2, p3, p4, p5 = 11400714785074694791, 14029467366897019727, 1609587929392839161, 9650029242287828579, 2870177450012600261
	unshift := func(h uint64, s uint) uint64 {
		x := h
		for range 64/s + 1 {
			x = h ^ x>>s
		}
		return x
	}
	h = unshift(h, 32) * modInverse(p3)
	h = unshift(h, 29) * modInverse(p2)
	h = unshift(h, 33)
	h = bits.RotateLeft64((h-p4)*modInverse(p1), -27)
	k1 := h ^ (p5 + 8)
	return bits.RotateLeft64(k1*modInverse(p1), -31) * modInverse(p2)
}

// modInverse is the inverse of odd a modulo 2^64 (Newton's iteration).
func modInverse(a uint64) uint64 {
	x := a
	for range 6 {
		x *= 2 - a*x
	}
	return x
}
