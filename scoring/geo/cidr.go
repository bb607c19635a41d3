package geo

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
)

// CIDRSet is an immutable set of IPv4 and IPv6 networks, stored as sorted,
// merged address ranges so that Contains is a binary search without
// allocations. A nil *CIDRSet is empty. It is safe for concurrent use.
type CIDRSet struct {
	v4      []range4
	v6      []range6
	entries int // lines that held a network, before merging
}

type range4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as a big-endian pair of words.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

// next returns a+1 and whether it overflowed.
func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}, a.hi == ^uint64(0)
	}
	return u128{a.hi, a.lo + 1}, false
}

type range6 struct{ lo, hi u128 }

// LoadCIDRList reads a datacenter/proxy network list: one network per line in
// CIDR notation ("203.0.113.0/24", "2001:db8::/32"), or a bare address for a
// single host, optionally followed by whitespace and a free-text label (the
// provider, for people reading the file; it is not stored). Everything after
// '#' is a comment; blank lines are ignored. A prefix with host bits set
// ("10.1.2.3/8") is rejected, because it is usually a typo for a narrower
// network. IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/n, n >= 96) are stored as
// IPv4. Errors name the line number.
func LoadCIDRList(r io.Reader) (*CIDRSet, error) {
	s := &CIDRSet{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		p, err := ParseNetwork(fields[0])
		if err != nil {
			return nil, fmt.Errorf("geo: cidr list line %d: %w", line, err)
		}
		s.add(p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("geo: cidr list after line %d: %w", line, err)
	}
	s.v4 = mergeRanges(s.v4, func(a, b range4) bool { return a.lo < b.lo },
		func(cur, r range4) (range4, bool) {
			// r.lo <= cur.hi+1 means overlapping or adjacent.
			if cur.hi == ^uint32(0) || r.lo <= cur.hi+1 {
				cur.hi = max(cur.hi, r.hi)
				return cur, true
			}
			return cur, false
		})
	s.v6 = mergeRanges(s.v6, func(a, b range6) bool { return a.lo.less(b.lo) },
		func(cur, r range6) (range6, bool) {
			n, overflow := cur.hi.next()
			if overflow || !n.less(r.lo) {
				if cur.hi.less(r.hi) {
					cur.hi = r.hi
				}
				return cur, true
			}
			return cur, false
		})
	return s, nil
}

// LoadCIDRFile is LoadCIDRList on a file; errors name the file and the line.
func LoadCIDRFile(path string) (*CIDRSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	s, err := LoadCIDRList(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

//go:embed idc_cidrs.txt
var defaultIDCList string

var defaultIDCSet = sync.OnceValue(func() *CIDRSet {
	s, err := LoadCIDRList(strings.NewReader(defaultIDCList))
	if err != nil {
		panic("geo: embedded idc_cidrs.txt is invalid: " + err.Error())
	}
	return s
})

// DefaultIDCList returns the datacenter list shipped in idc_cidrs.txt, parsed
// once. It is a modest starting point; the risk team maintains the real list
// and passes it with WithIDCList(LoadCIDRFile(...)).
func DefaultIDCList() *CIDRSet { return defaultIDCSet() }

// ParseNetwork reads one network as the CIDR list files write it: a CIDR with no host bits set
// (10.0.0.0/8, not 10.1.2.3/8 — a typo must not widen a range), or a bare address (a /32 or
// /128). An IPv4-mapped IPv6 network (::ffff:a.b.c.d/n, n ≥ 96) becomes the IPv4 network it
// spells. Zones are rejected.
func ParseNetwork(field string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.IndexByte(field, '/') >= 0 {
		var err error
		p, err = netip.ParsePrefix(field)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR network: %w", field, unwrapParse(err))
		}
		if p.Addr().Zone() != "" {
			return p, fmt.Errorf("%q: zones are not allowed", field)
		}
		if m := p.Masked(); m != p {
			return p, fmt.Errorf("%q has host bits set (did you mean %s?)", field, m)
		}
	} else {
		a, err := netip.ParseAddr(field)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR network or IP address: %w", field, unwrapParse(err))
		}
		if a.Zone() != "" {
			return p, fmt.Errorf("%q: zones are not allowed", field)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	// A masked prefix shorter than /96 cannot start inside ::ffff:0:0/96, so
	// an IPv4-mapped address here always has at least 96 bits.
	if a := p.Addr(); a.Is4In6() {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// unwrapParse drops netip's `ParseXxx("input"): ` prefix, since the caller
// already quotes the input (which, being one field, holds no spaces).
func unwrapParse(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 {
		return errors.New(msg[i+3:])
	}
	return err
}

func (s *CIDRSet) add(p netip.Prefix) {
	s.entries++
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		lo := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		var hostMask uint32
		if p.Bits() < 32 {
			hostMask = ^uint32(0) >> p.Bits()
		}
		s.v4 = append(s.v4, range4{lo, lo | hostMask})
		return
	}
	lo := addr128(a)
	hi := lo
	switch bits := p.Bits(); {
	case bits == 0:
		hi = u128{^uint64(0), ^uint64(0)}
	case bits < 64:
		hi.hi |= ^uint64(0) >> bits
		hi.lo = ^uint64(0)
	case bits < 128:
		hi.lo |= ^uint64(0) >> (bits - 64)
	}
	s.v6 = append(s.v6, range6{lo, hi})
}

func mergeRanges[R any](rs []R, less func(a, b R) bool, merge func(cur, r R) (R, bool)) []R {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b R) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		if m, ok := merge(out[len(out)-1], r); ok {
			out[len(out)-1] = m
		} else {
			out = append(out, r)
		}
	}
	return slices.Clip(out)
}

func addr128(a netip.Addr) u128 {
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[i+8])
	}
	return u128{hi, lo}
}

// Contains reports whether ip is inside one of the set's networks. IPv4-mapped
// IPv6 addresses are matched as IPv4; the zone is ignored.
func (s *CIDRSet) Contains(ip netip.Addr) bool {
	if s == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	if ip.Is4() {
		b := ip.As4()
		x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		// First range whose hi >= x; the ranges are disjoint and sorted.
		lo, hi := 0, len(s.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s.v4[m].hi < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(s.v4) && s.v4[lo].lo <= x
	}
	x := addr128(ip)
	lo, hi := 0, len(s.v6)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.v6[m].hi.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(s.v6) && !x.less(s.v6[lo].lo)
}

// Len returns the number of networks that were listed (before overlapping and
// adjacent networks were merged).
func (s *CIDRSet) Len() int {
	if s == nil {
		return 0
	}
	return s.entries
}
