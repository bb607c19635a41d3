package scoring

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/features"
	"github.com/riskflow/riskflow/scoring/geo"
)

// Lists are the risk team's allow and block lists: phones, IPs and CIDR ranges, devices and 7-digit
// number prefixes. Rules read them through phone_listed, ip_listed, device_listed, prefix_listed.
//
// File format, one entry per line, '#' starts a comment:
//
//	block phone  13800138000
//	allow ip     203.0.113.7
//	block ip     198.51.100.0/24
//	block device 5f1c9a…
//	block prefix 1700123
//
// When a value is on both lists, block wins. For an IP the most specific entry decides: the longest
// range holding it, a listed address being a /32 or /128. Networks are written as in the datacenter
// list (geo.ParseNetwork): no host bits, ::ffff:a.b.c.d/n read as the IPv4 range it spells.
type Lists struct {
	phones  map[string]string // normalized number → action; keyed by the scorer (see keyed)
	devices map[uint64]string
	prefix  map[uint64]string
	v4, v6  cidrTable // IPv4 ranges (IPv4-mapped ones included) and IPv6 ranges
	entries int
}

// cidrTable holds ranges of one address family by prefix length, for a longest-prefix match.
type cidrTable struct {
	nets map[int]map[netip.Addr]string // prefix length → masked address → action
	bits []int                         // prefix lengths present, longest first
}

func (c *cidrTable) put(p netip.Prefix, action string) {
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
func (c *cidrTable) match(a netip.Addr) string {
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

// Len is the number of entries.
func (l *Lists) Len() int {
	if l == nil {
		return 0
	}
	return l.entries
}

// ParseLists reads the list format above; errors name the line.
func ParseLists(r io.Reader) (*Lists, error) {
	l := &Lists{
		phones: map[string]string{}, devices: map[uint64]string{}, prefix: map[uint64]string{},
	}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: expected `allow|block phone|ip|device|prefix VALUE`, got %d fields", line, len(f))
		}
		action, kind, value := f[0], f[1], f[2]
		if action != "allow" && action != "block" {
			return nil, fmt.Errorf("line %d: action %q is not allow or block", line, action)
		}
		switch kind {
		case "phone":
			p, err := schemas.NormalizePhone(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			put(l.phones, p, action) // keyed as the state keys phones when a scorer takes the lists
		case "device":
			put(l.devices, nz(xxhash.Sum64String(value)), action)
		case "prefix":
			if len(value) != 7 || strings.Trim(value, "0123456789") != "" || value[0] != '1' {
				return nil, fmt.Errorf("line %d: prefix %q is not 7 digits starting with 1", line, value)
			}
			put(l.prefix, prefixKey7(value), action)
		case "ip":
			// The datacenter list's syntax: a bare address is a /32 or /128, the most specific
			// range there is.
			p, err := geo.ParseNetwork(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			if p.Addr().Is4() {
				l.v4.put(p, action)
			} else {
				l.v6.put(p, action)
			}
		default:
			return nil, fmt.Errorf("line %d: kind %q is not phone, ip, device or prefix", line, kind)
		}
		l.entries++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	return l, nil
}

// LoadLists reads a list file.
func LoadLists(path string) (*Lists, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open lists: %w", err)
	}
	defer f.Close()
	l, err := ParseLists(f)
	if err != nil {
		return nil, fmt.Errorf("lists %s: %w", path, err)
	}
	return l, nil
}

func put[K comparable](m map[K]string, k K, action string) {
	if m[k] == "block" {
		return
	}
	m[k] = action
}

type listHits struct{ phone, ip, device, prefix string }

// keyedLists are lists as one scorer reads them: the phones keyed as its state keys them (a keyed
// hash: see Scorer.phoneKeyOf), so that an attempt's phone key finds its entry.
type keyedLists struct {
	*Lists
	phones map[uint64]string
}

// keyed returns l with its phones keyed by key (nil for nil lists).
func (l *Lists) keyed(key func(phone string) uint64) *keyedLists {
	if l == nil {
		return nil
	}
	k := &keyedLists{Lists: l, phones: make(map[uint64]string, len(l.phones))}
	for p, action := range l.phones {
		put(k.phones, key(p), action)
	}
	return k
}

func (l *keyedLists) lookup(ev *schemas.VerifyEvent, k *features.Keys) listHits {
	if l == nil || l.entries == 0 {
		return listHits{}
	}
	var h listHits
	h.phone = l.phones[k.Phone]
	if k.Device != 0 {
		h.device = l.devices[k.Device]
	}
	h.prefix = l.prefix[k.Prefix]
	// The most specific entry decides: the longest range holding the address (a listed address
	// is a /32 or /128).
	ip := ev.IP.Unmap()
	if ip.Is4() {
		h.ip = l.v4.match(ip)
	} else if ip.IsValid() {
		h.ip = l.v6.match(ip)
	}
	return h
}

type listsHolder struct{ p atomic.Pointer[keyedLists] }

func (h *listsHolder) Load() *keyedLists   { return h.p.Load() }
func (h *listsHolder) Store(l *keyedLists) { h.p.Store(l) }
