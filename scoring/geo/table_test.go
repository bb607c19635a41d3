package geo

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"go4.org/netipx"
)

// randomPrefix is a network of a random length, IPv4 or IPv6, biased to a few small address
// regions so that networks nest and touch.
func randomPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(4) == 0 {
		var b [16]byte
		b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(4))
		for i := 3; i < 16; i++ {
			b[i] = byte(r.IntN(4))
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), r.IntN(129)).Masked()
	}
	b := [4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))}
	return netip.PrefixFrom(netip.AddrFrom4(b), r.IntN(33)).Masked()
}

func randomAddr(r *rand.Rand) netip.Addr {
	if r.IntN(4) == 0 {
		var b [16]byte
		b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(4))
		for i := 3; i < 16; i++ {
			b[i] = byte(r.IntN(4))
		}
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))})
}

// The table answers as a brute-force longest-prefix match does, and as netipx.IPSet does for
// membership, on random nested and adjacent networks (edges included: /0, /32, /128).
func TestCIDRTableMatchesReferences(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		b := NewCIDRTableBuilder(func(old, new string) string { return min(old, new) })
		want := map[netip.Prefix]string{}
		var sb netipx.IPSetBuilder
		for i := range 1 + r.IntN(40) {
			p, v := randomPrefix(r), fmt.Sprintf("v%d", r.IntN(3))
			if round%50 == 0 && i == 0 {
				p = netip.MustParsePrefix([]string{"0.0.0.0/0", "::/0", "255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}[round/50])
			}
			b.Add(p, v)
			if old, ok := want[p]; ok {
				v = min(old, v)
			}
			want[p] = v
			sb.AddPrefix(p)
		}
		tab := b.Build()
		set, err := sb.IPSet()
		if err != nil {
			t.Fatal(err)
		}
		for range 300 {
			a := randomAddr(r)
			if round%50 == 0 && r.IntN(10) == 0 {
				a = netip.MustParseAddr([]string{"255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0", "::"}[r.IntN(4)])
			}
			wantV, wantOK, bestBits := "", false, -1
			for p, v := range want {
				if p.Contains(a) && p.Bits() > bestBits {
					wantV, wantOK, bestBits = v, true, p.Bits()
				}
			}
			gotV, gotOK := tab.Lookup(a)
			if gotV != wantV || gotOK != wantOK {
				t.Fatalf("round %d: Lookup(%s) = %q %v, want %q %v (networks %v)", round, a, gotV, gotOK, wantV, wantOK, want)
			}
			if set.Contains(a) != gotOK {
				t.Fatalf("round %d: %s: table says %v, netipx.IPSet %v", round, a, gotOK, set.Contains(a))
			}
			if m := netip.AddrFrom16(a.As16()); a.Is4() {
				if v, ok := tab.Lookup(m); v != gotV || ok != gotOK {
					t.Fatalf("IPv4-mapped %s looked up as %q %v, IPv4 as %q %v", m, v, ok, gotV, gotOK)
				}
			}
		}
	}
	var empty *CIDRTable[string]
	if _, ok := empty.Lookup(netip.MustParseAddr("10.0.0.1")); ok || empty.Ranges() != 0 {
		t.Error("nil table is not empty")
	}
}

// Networks of one value that nest or touch become one range.
func TestCIDRTableMerges(t *testing.T) {
	b := NewCIDRTableBuilder[bool](nil)
	for _, p := range []string{"10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/24", "10.0.1.0/24", "192.0.2.7/32", "2001:db8::/33", "2001:db8:8000::/33"} {
		b.Add(netip.MustParsePrefix(p), true)
	}
	if n := b.Build().Ranges(); n != 3 {
		t.Errorf("%d ranges, want 3 (10.0.0.0–10.0.1.255, 192.0.2.7, 2001:db8::/32)", n)
	}
}

// The datacenter list against netipx.IPSet: the same answers (above) and the cost of a lookup,
// half of the addresses inside the list.
func BenchmarkIDCContains(b *testing.B) {
	set := DefaultIDCList()
	ps := idcPrefixes(b)
	var sb netipx.IPSetBuilder
	for _, p := range ps {
		sb.AddPrefix(p)
	}
	ipset, err := sb.IPSet()
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		if i%2 == 0 {
			p := ps[r.IntN(len(ps))]
			addrs[i] = p.Addr()
		} else {
			addrs[i] = netip.AddrFrom4([4]byte{byte(r.IntN(224)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		if set.Contains(addrs[i]) != ipset.Contains(addrs[i]) {
			b.Fatalf("%s: CIDRSet and netipx disagree", addrs[i])
		}
	}
	b.Run("CIDRSet", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			if set.Contains(addrs[i&1023]) {
				n++
			}
		}
		_ = n
	})
	b.Run("netipx.IPSet", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			if ipset.Contains(addrs[i&1023]) {
				n++
			}
		}
		_ = n
	})
}

// idcPrefixes are the networks of the shipped datacenter list.
func idcPrefixes(tb testing.TB) []netip.Prefix {
	var out []netip.Prefix
	for _, line := range strings.Split(defaultIDCList, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p, err := ParseNetwork(f[0])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
