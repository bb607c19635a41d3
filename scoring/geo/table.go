package geo

import (
	"net/netip"
	"slices"
)

// CIDRTable maps networks to values by longest-prefix match: an address gets the value of the most
// specific network holding it. It is stored as sorted, disjoint address ranges, each carrying the
// value of the most specific network over it (adjacent ranges of equal value merged), so that
// Lookup is one binary search without allocations whatever the mix of prefix lengths. It is the
// one structure behind the datacenter list (CIDRSet) and the allow/block lists' networks. Build
// one with a CIDRTableBuilder. A nil table is empty; a table is immutable and safe for concurrent
// use.
type CIDRTable[V comparable] struct {
	v4 []span4[V]
	v6 []span6[V]
}

type span4[V comparable] struct {
	lo, hi uint32
	v      V
}

type span6[V comparable] struct {
	lo, hi u128
	v      V
}

// CIDRTableBuilder collects networks for a CIDRTable.
type CIDRTableBuilder[V comparable] struct {
	nets    map[netip.Prefix]V
	combine func(old, new V) V
}

// NewCIDRTableBuilder returns a builder; combine decides the value of a network added twice (nil:
// the later value).
func NewCIDRTableBuilder[V comparable](combine func(old, new V) V) *CIDRTableBuilder[V] {
	if combine == nil {
		combine = func(_, n V) V { return n }
	}
	return &CIDRTableBuilder[V]{nets: map[netip.Prefix]V{}, combine: combine}
}

// Add adds network p (masked; an IPv4-mapped network is taken as the IPv4 network it spells, as
// ParseNetwork returns it) with value v.
func (b *CIDRTableBuilder[V]) Add(p netip.Prefix, v V) {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if old, ok := b.nets[p]; ok {
		v = b.combine(old, v)
	}
	b.nets[p] = v
}

// Build returns the table of the networks added so far.
func (b *CIDRTableBuilder[V]) Build() *CIDRTable[V] {
	var n4, n6 []netRange[V]
	for p, v := range b.nets {
		lo, hi := prefixRange(p)
		r := netRange[V]{lo: lo, hi: hi, bits: p.Bits(), v: v}
		if p.Addr().Is4() {
			n4 = append(n4, r)
		} else {
			n6 = append(n6, r)
		}
	}
	t := &CIDRTable[V]{}
	for _, s := range paint(n4) {
		t.v4 = append(t.v4, span4[V]{lo: uint32(s.lo.lo), hi: uint32(s.hi.lo), v: s.v})
	}
	for _, s := range paint(n6) {
		t.v6 = append(t.v6, span6[V](s))
	}
	return t
}

// netRange is one network as an address range (IPv4 in the low word).
type netRange[V comparable] struct {
	lo, hi u128
	bits   int
	v      V
}

// prefixRange is the first and last address of p (IPv4 in the low 32 bits).
func prefixRange(p netip.Prefix) (lo, hi u128) {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		var hostMask uint32
		if p.Bits() < 32 {
			hostMask = ^uint32(0) >> p.Bits()
		}
		return u128{0, uint64(x)}, u128{0, uint64(x | hostMask)}
	}
	lo = addr128(a)
	hi = lo
	switch bits := p.Bits(); {
	case bits == 0:
		hi = u128{^uint64(0), ^uint64(0)}
	case bits < 64:
		hi.hi |= ^uint64(0) >> bits
		hi.lo = ^uint64(0)
	case bits < 128:
		hi.lo |= ^uint64(0) >> (bits - 64)
	}
	return lo, hi
}

// prev returns a-1 for a > 0.
func (a u128) prev() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

// paint turns networks — nested or disjoint, as CIDR networks are — into disjoint ranges, each with
// the value of the most specific network over it, merging adjacent ranges of equal value. It
// sweeps the networks in address order (wider first at equal start) with the stack of networks
// holding the current address.
func paint[V comparable](nets []netRange[V]) []span6[V] {
	slices.SortFunc(nets, func(a, b netRange[V]) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return a.bits - b.bits
	})
	var out []span6[V]
	emit := func(lo, hi u128, v V) {
		if n := len(out); n > 0 && out[n-1].v == v {
			if next, ovf := out[n-1].hi.next(); !ovf && next == lo {
				out[n-1].hi = hi
				return
			}
		}
		out = append(out, span6[V]{lo: lo, hi: hi, v: v})
	}
	var stack []netRange[V]
	var cur u128 // the first address not emitted yet, while the stack is not empty
	done := false
	// pop closes the innermost network: what is left of it up to its end is its own.
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if done {
			return
		}
		if !top.hi.less(cur) {
			emit(cur, top.hi, top.v)
		}
		next, ovf := top.hi.next()
		if ovf {
			done = true // the last address is emitted: every network still open ends there too
			return
		}
		cur = next
	}
	for _, n := range nets {
		for len(stack) > 0 && stack[len(stack)-1].hi.less(n.lo) {
			pop()
		}
		if len(stack) > 0 && cur.less(n.lo) {
			emit(cur, n.lo.prev(), stack[len(stack)-1].v)
		}
		cur = n.lo
		stack = append(stack, n)
	}
	for len(stack) > 0 {
		pop()
	}
	return out
}

// Lookup returns the value of the most specific network holding ip, and whether one does.
// IPv4-mapped IPv6 addresses are looked up as IPv4; the zone is ignored.
func (t *CIDRTable[V]) Lookup(ip netip.Addr) (v V, ok bool) {
	if t == nil {
		return v, false
	}
	return findSpan(t.v4, t.v6, ip)
}

// findSpan returns the value of the span holding ip among v4 and v6 (each disjoint and sorted),
// and whether one does. IPv4-mapped IPv6 addresses are looked up as IPv4.
func findSpan[V comparable](v4 []span4[V], v6 []span6[V], ip netip.Addr) (v V, ok bool) {
	if !ip.IsValid() {
		return v, false
	}
	ip = ip.Unmap()
	if ip.Is4() {
		x := v4num(ip)
		// First span whose hi >= x.
		lo, hi := 0, len(v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if v4[m].hi < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < len(v4) && v4[lo].lo <= x {
			return v4[lo].v, true
		}
		return v, false
	}
	x := addr128(ip)
	lo, hi := 0, len(v6)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v6[m].hi.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(v6) && !x.less(v6[lo].lo) {
		return v6[lo].v, true
	}
	return v, false
}

// Ranges is the number of disjoint ranges the table holds.
func (t *CIDRTable[V]) Ranges() int {
	if t == nil {
		return 0
	}
	return len(t.v4) + len(t.v6)
}
