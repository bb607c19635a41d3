package geo

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/riskflow/riskflow/schemas"
)

// CIDRSet is an immutable set of IPv4 and IPv6 networks: a CIDRTable whose networks carry no
// value, so that Contains is a binary search over sorted, merged address ranges without
// allocations. A nil *CIDRSet is empty. It is safe for concurrent use.
type CIDRSet struct {
	t       *CIDRTable[struct{}]
	entries int // lines that held a network, before merging
}

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

// LoadCIDRList reads a datacenter/proxy network list: one network per line in
// CIDR notation ("203.0.113.0/24", "2001:db8::/32"), or a bare address for a
// single host, optionally followed by whitespace and a free-text label (the
// provider, for people reading the file; it is not stored). Everything after
// '#' is a comment; blank lines are ignored. A prefix with host bits set
// ("10.1.2.3/8") is rejected, because it is usually a typo for a narrower
// network. IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/n, n >= 96) are stored as
// IPv4. Errors name the line number.
func LoadCIDRList(r io.Reader) (*CIDRSet, error) {
	b := NewCIDRTableBuilder[struct{}](nil)
	entries := 0
	err := eachListEntry(r, "cidr list", func(entry string) error {
		p, err := ParseNetwork(entry)
		if err != nil {
			return err
		}
		b.Add(p, struct{}{})
		entries++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &CIDRSet{t: b.Build(), entries: entries}, nil
}

// eachListEntry calls fn with the first field of every line of a list file that holds one (what
// follows it is a free-text label; '#' starts a comment). Errors, fn's included, name the list
// and the line.
func eachListEntry(r io.Reader, list string, fn func(entry string) error) error {
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
		if err := fn(fields[0]); err != nil {
			return fmt.Errorf("geo: %s line %d: %w", list, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("geo: %s after line %d: %w", list, line, err)
	}
	return nil
}

// LoadCIDRFile is LoadCIDRList on a file; errors name the file and the line.
func LoadCIDRFile(path string) (*CIDRSet, error) { return loadFile(path, LoadCIDRList) }

// loadFile opens path and reads it with load; errors name the file.
func loadFile[T any](path string, load func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	v, err := load(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
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
// spells. Zones are rejected. Errors show the field as schemas.Excerpt does (a phone number typed
// into a list's network field — the console's form, the lists file — is masked, not echoed).
func ParseNetwork(field string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.IndexByte(field, '/') >= 0 {
		var err error
		p, err = netip.ParsePrefix(field)
		if err != nil {
			return p, fmt.Errorf("%s is not a CIDR network: %w", schemas.Excerpt(field, 64), unwrapParse(err))
		}
		if p.Addr().Zone() != "" {
			return p, fmt.Errorf("%s: zones are not allowed", schemas.Excerpt(field, 64))
		}
		if m := p.Masked(); m != p {
			// The network suggested is masked as the value is: an IPv6 one's groups may read
			// as a phone number ("1381:2345:678::/48").
			return p, fmt.Errorf("%s has host bits set (did you mean %s?)", schemas.Excerpt(field, 64), schemas.MaskPhones(m.String()))
		}
	} else {
		a, err := netip.ParseAddr(field)
		if err != nil {
			return p, fmt.Errorf("%s is not a CIDR network or IP address: %w", schemas.Excerpt(field, 64), unwrapParse(err))
		}
		if a.Zone() != "" {
			return p, fmt.Errorf("%s: zones are not allowed", schemas.Excerpt(field, 64))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	// A network of IPv6 addresses that embed IPv4 addresses (IPv4-mapped, NAT64, 6to4, Teredo…)
	// is the IPv4 network, as attempts from them are read (ClientPrefix).
	return ClientPrefix(p), nil
}

// unwrapParse drops netip's `ParseXxx("input"): ` prefixes — all of them: ParsePrefix's error
// holds ParseAddr's (`netip.ParsePrefix("x/24"): ParseAddr("x"): unable to parse IP`) — since the
// caller already shows the input, masked (which, being one field, holds no spaces). What is left
// may still quote part of it (`bad bits after slash: "…"`), so phone numbers are masked there too.
func unwrapParse(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, "\"): "); i >= 0 {
		msg = msg[i+len("\"): "):]
	}
	// netip ends some reasons with the rest of the text as it was, unescaped (IPv4 field must have
	// at least one digit (at ".\x01…")): the field is already shown, escaped, before the reason.
	if i := strings.Index(msg, " (at \""); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return utf8.RuneError
		}
		return r
	}, msg)
	return errors.New(schemas.MaskPhones(msg))
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
	_, ok := s.t.Lookup(ip)
	return ok
}

// Len returns the number of networks that were listed (before overlapping and
// adjacent networks were merged).
func (s *CIDRSet) Len() int {
	if s == nil {
		return 0
	}
	return s.entries
}
