package api

import (
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// An attacker rotating through IPv6 networks must not grow the failure buckets without bound.
func TestAddrLimiterIsBounded(t *testing.T) {
	a := newAddrLimiter(20, 10)
	now := time.Now()
	var last netip.Prefix
	for i := range 5 * maxTrackedAddrs {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
		last = netip.PrefixFrom(ip, 64).Masked()
		a.failed(last, "", now)
		if n := a.tracked(); n > maxTrackedAddrs {
			t.Fatalf("%d addresses tracked after %d failures, the bound is %d", n, i+1, maxTrackedAddrs)
		}
	}
	if _, ok := a.m.Load(failKey{addr: last}); !ok {
		t.Error("the newest address was evicted")
	}
}

// Eviction drops buckets that refilled (they carry no state) before any that still count.
func TestAddrLimiterEvictsRefilledFirst(t *testing.T) {
	a := newAddrLimiter(60, 2) // one token a second
	t0 := time.Now()
	addr := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	for i := range maxTrackedAddrs / 2 {
		a.failed(addr(i), "", t0) // refilled a minute later
	}
	t1 := t0.Add(time.Minute)
	for i := maxTrackedAddrs / 2; i < maxTrackedAddrs; i++ {
		a.failed(addr(i), "", t1)
		a.failed(addr(i), "", t1) // empty: blocked at t1
	}
	a.failed(addr(maxTrackedAddrs), "", t1) // full: evicts
	if n := a.tracked(); n != maxTrackedAddrs/2+1 {
		t.Errorf("%d tracked after eviction, want the %d that still count", n, maxTrackedAddrs/2+1)
	}
	for i := maxTrackedAddrs / 2; i < maxTrackedAddrs; i += 997 {
		if a.blocked(addr(i), "", t1) == 0 {
			t.Fatalf("address %d was forgotten while blocked", i)
		}
	}
}

func TestClientAddr(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1:1234":          "192.0.2.1/32",
		"[::ffff:192.0.2.1]:1234": "192.0.2.1/32",
		"[2001:db8::1]:1":         "2001:db8::/64",
		"[2001:db8::ffff:1:2]:1":  "2001:db8::/64",
		"[fe80::1%eth0]:1":        "fe80::/64",
		"2001:db8:0:1::7":         "2001:db8:0:1::/64",
		"not an address":          "invalid Prefix",
		"":                        "invalid Prefix",
	}
	for remote, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := clientAddr(r, nil).String(); got != want {
			t.Errorf("clientAddr(%q) = %s, want %s", remote, got, want)
		}
	}
}

// blocked reads the buckets without the limiter's lock while failures add them: under -race,
// concurrent failures and looks keep the same answers — an address that spent its burst is
// blocked, the others are not. (Below the bound: eviction may forget any bucket once the map is
// full of blocked ones; TestAddrLimiterIsBounded covers that.)
func TestAddrLimiterConcurrentLooksAndFailures(t *testing.T) {
	a := newAddrLimiter(1, 3)
	now := time.Now()
	addr := func(g, i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), 32)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range maxTrackedAddrs / 5 {
				if a.blocked(addr(g, i), "", now) != 0 {
					t.Errorf("address %d/%d blocked before failing", g, i)
					return
				}
				for range 3 {
					a.failed(addr(g, i), "", now)
				}
				if a.blocked(addr(g, i), "", now) == 0 {
					t.Errorf("address %d/%d not blocked after its burst of failures", g, i)
					return
				}
				if a.blocked(addr(g, i), "app", now) != 0 {
					t.Errorf("address %d/%d blocked for an app it did not fail", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := a.tracked(); n != 4*(maxTrackedAddrs/5) {
		t.Errorf("%d buckets tracked, want %d", n, 4*(maxTrackedAddrs/5))
	}
}
