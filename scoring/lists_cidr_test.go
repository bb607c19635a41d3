package scoring

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// refCIDRTable is the lists' former network table — a map per prefix length, probed longest first
// — kept as the reference the CIDRTable the lists now use is compared with and measured against.
type refCIDRTable struct {
	nets map[int]map[netip.Addr]string // prefix length → masked address → action
	bits []int                         // prefix lengths present, longest first
}

func (c *refCIDRTable) put(p netip.Prefix, action string) {
	if c.nets == nil {
		c.nets = map[int]map[netip.Addr]string{}
	}
	m := c.nets[p.Bits()]
	if m == nil {
		m = map[netip.Addr]string{}
		c.nets[p.Bits()] = m
		c.bits = append(c.bits, p.Bits())
		slices.SortFunc(c.bits, func(a, b int) int { return b - a }) // longest prefix first
	}
	put(m, p.Addr(), action)
}

// match returns the action of the longest range holding a ("" when none).
func (c *refCIDRTable) match(a netip.Addr) string {
	for _, bits := range c.bits {
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if act, ok := c.nets[bits][p.Addr()]; ok {
			return act
		}
	}
	return ""
}

// The lists' networks answer as the former table did: the most specific entry decides, block
// wins on one network.
func TestListNetworksMatchTheFormerTable(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 100 {
		var b strings.Builder
		var ref4, ref6 refCIDRTable
		for range 1 + r.IntN(30) {
			p, action := randomListNet(r), []string{"allow", "block"}[r.IntN(2)]
			fmt.Fprintf(&b, "%s ip %s\n", action, p)
			if p.Addr().Is4() {
				ref4.put(p, action)
			} else {
				ref6.put(p, action)
			}
		}
		l, err := ParseLists(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			a := randomListAddr(r)
			want := ref6.match(a)
			if a.Is4() {
				want = ref4.match(a)
			}
			if got, _ := l.ips.Lookup(a); got.action != want {
				t.Fatalf("%s: %q, the former table %q\n%s", a, got.action, want, b.String())
			}
		}
	}
}

func randomListNet(r *rand.Rand) netip.Prefix {
	if r.IntN(3) == 0 {
		return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4)), 15: byte(r.IntN(4))}), 32+r.IntN(97)).Masked()
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(r.IntN(4)), byte(r.IntN(256))}), 16+r.IntN(17)).Masked()
}

func randomListAddr(r *rand.Rand) netip.Addr {
	if r.IntN(3) == 0 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(4)), 15: byte(r.IntN(4))})
	}
	return netip.AddrFrom4([4]byte{203, 0, byte(r.IntN(4)), byte(r.IntN(256))})
}

// A list of ranges of many lengths, as risk teams write them: the table against the former one.
func BenchmarkListNetworks(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	var sb strings.Builder
	var ref4 refCIDRTable
	for range 2000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), 8+r.IntN(25)).Masked()
		fmt.Fprintf(&sb, "block ip %s\n", p)
		ref4.put(p, "block")
	}
	l, err := ParseLists(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	b.Run("CIDRTable", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			l.ips.Lookup(addrs[i&1023])
		}
	})
	b.Run("former map per prefix length", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ref4.match(addrs[i&1023])
		}
	})
}
