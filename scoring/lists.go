package scoring

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"

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
//	block phone_hash 9f86d081…   (64 hex digits: the keyed phone hash, schemas.PhoneHasher.Hex)
//
// phone_hash entries keep numbers out of the file: the console writes them (a number is hashed on
// entry), and they match the phone_hash column of the ClickHouse tables. They need the scorer's
// phone hasher (scoring.WithPhoneHasher) to be matched.
//
// When a value is on both lists, block wins. For an IP the most specific entry decides: the longest
// range holding it, a listed IPv4 address being a /32 and a listed IPv6 address (written bare, as
// the console writes one) its /64 — the unit the windows count a cellular IPv6 address in (a host
// picks a new interface id inside its /64 at will: listed as a /128, a blocked farm was unblocked
// by its next privacy address; a broadband line, counted as its /56, is listed as a /56 CIDR); an
// address written with /128 is that address only. Networks are written
// as in the datacenter list (geo.ParseNetwork): no host bits, ::ffff:a.b.c.d/n read as the IPv4
// range it spells.
type Lists struct {
	phones  map[string]string   // normalized number → action; keyed by the scorer (see keyed)
	hashed  map[[32]byte]string // keyed phone hashes (phone_hash entries)
	devices map[uint64]string
	prefix  map[uint64]string
	ips     *geo.CIDRTable[listedNet] // networks → action, longest prefix first
	entries int
}

// listedNet is a listed network's action and the network itself, named in reasons.
type listedNet struct {
	action string
	net    netip.Prefix
}

// blockWins combines two actions for one network: block wins.
func blockWins(old, new listedNet) listedNet {
	if old.action == "block" {
		return old
	}
	return new
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
		hashed: map[[32]byte]string{},
	}
	ips := geo.NewCIDRTableBuilder(blockWins)
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
			return nil, fmt.Errorf("line %d: expected `allow|block phone|phone_hash|ip|device|prefix VALUE`, got %d fields", line, len(f))
		}
		action, kind, value := f[0], f[1], f[2]
		if action != "allow" && action != "block" {
			return nil, fmt.Errorf("line %d: action %s is not allow or block", line, schemas.Excerpt(action, 64))
		}
		switch kind {
		case "phone":
			p, err := schemas.NormalizePhone(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			put(l.phones, p, action) // keyed as the state keys phones when a scorer takes the lists
		case "phone_hash":
			var k [32]byte
			// The length first: hex.Decode writes past k given more than 64 digits (a panic).
			if len(value) != 64 {
				return nil, fmt.Errorf("line %d: phone_hash is not 64 hex digits (the keyed hash of a number)", line)
			}
			if _, err := hex.Decode(k[:], []byte(value)); err != nil {
				return nil, fmt.Errorf("line %d: phone_hash is not 64 hex digits (the keyed hash of a number)", line)
			}
			put(l.hashed, k, action)
		case "device":
			// A device id that events may not carry (a phone number in it, too long) would never
			// match: refused as POST /v1/events and the console refuse it.
			if err := schemas.CheckDeviceID("device", value, schemas.MaxDeviceIDLen); err != nil {
				return nil, fmt.Errorf("line %d: %w; a number goes on the lists as kind phone", line, err)
			}
			put(l.devices, deviceKeyOf(value), action)
		case "prefix":
			if len(value) != 7 || strings.Trim(value, "0123456789") != "" || value[0] != '1' {
				return nil, fmt.Errorf("line %d: prefix %s is not 7 digits starting with 1", line, schemas.Excerpt(value, 64))
			}
			put(l.prefix, prefixKey7(value), action)
		case "ip":
			// The datacenter list's syntax: a bare address is a /32 or /128. A bare IPv6 address
			// stands for its /64, as in the windows; reasons name the address listed.
			p, err := geo.ParseNetwork(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			if a := geo.ClientAddr(p.Addr()); p.IsSingleIP() && a.Is4() && p.Addr().Is6() {
				p = netip.PrefixFrom(a, 32) // 64:ff9b::a.b.c.d: the IPv4 address, as events are read
			}
			in := p
			if p.IsSingleIP() && p.Addr().Is6() && !strings.Contains(value, "/") {
				in = netip.PrefixFrom(p.Addr(), 64).Masked()
			}
			ips.Add(in, listedNet{action, p})
		default:
			return nil, fmt.Errorf("line %d: kind %s is not phone, phone_hash, ip, device or prefix", line, schemas.Excerpt(kind, 64))
		}
		l.entries++
	}
	if err := sc.Err(); err != nil {
		return nil, scanError("read lists", line, err)
	}
	l.ips = ips.Build()
	return l, nil
}

// LoadLists reads a list file.
func LoadLists(path string) (*Lists, error) { return loadFile(path, "lists", ParseLists) }

// loadFile opens path and parses it; errors name what the file holds and, once open, its path.
func loadFile[T any](path, what string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("open %s: %w", what, err)
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return v, nil
}

// scanError is a bufio.Scanner's error after line lines, naming the line it could not read (a
// line longer than the scanner takes: it said "bufio.Scanner: token too long", naming none).
func scanError(what string, line int, err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than %d bytes", line+1, bufio.MaxScanTokenSize)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func put[K comparable](m map[K]string, k K, action string) {
	if m[k] == "block" {
		return
	}
	m[k] = action
}

// listHits are the actions of the lists on one attempt's number, IP, device and number block,
// with the network that decided the IP's and the block's digits (for reasons).
type listHits struct {
	phone, ip, device, prefix string
	ipNet                     netip.Prefix
	ipAddr                    netip.Addr // the attempt's address (geo.ClientAddr)
	block                     string     // the number's first 7 digits
}

// on names what of the attempt is on the list with action, for reasons: "number", "IP
// 203.0.113.99", "network 198.51.100.0/24", "device", "number block 1700123", joined with ", "
// ("number, device"); "" when nothing is. A number is never spelled out; an address or network is
// named because a range was listed, not the attempt's own address, and the reason says which
// ("network 2001:db8::/64 of IP 2001:db8::9": another address of a listed IPv6 address's /64).
func (h *listHits) on(action string) string {
	var parts []string
	if h.phone == action {
		parts = append(parts, "number")
	}
	if h.ip == action {
		switch {
		case h.ipNet.IsSingleIP() && h.ipNet.Addr() != h.ipAddr:
			// A listed IPv6 address, and another address of its /64.
			parts = append(parts, "network "+netip.PrefixFrom(h.ipNet.Addr(), 64).Masked().String()+" of IP "+h.ipNet.Addr().String())
		case h.ipNet.IsSingleIP():
			parts = append(parts, "IP "+h.ipNet.Addr().String())
		default:
			parts = append(parts, "network "+h.ipNet.String())
		}
	}
	if h.device == action {
		parts = append(parts, "device")
	}
	if h.prefix == action {
		parts = append(parts, strings.TrimSpace("number block "+h.block))
	}
	return strings.Join(parts, ", ")
}

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

func (l *keyedLists) lookup(ev *schemas.VerifyEvent, k *features.Keys, hasher *schemas.PhoneHasher) listHits {
	if l == nil || l.entries == 0 {
		return listHits{}
	}
	var h listHits
	h.phone = l.phones[k.Phone]
	if len(l.hashed) > 0 && hasher != nil && h.phone != "block" {
		// Only lists with hashed entries pay for the HMAC here; block wins over allow.
		if act, ok := l.hashed[hasher.Sum(ev.Phone)]; ok && (h.phone == "" || act == "block") {
			h.phone = act
		}
	}
	if k.Device != 0 {
		h.device = l.devices[k.Device]
	}
	h.prefix = l.prefix[k.Prefix]
	if h.prefix != "" && len(ev.Phone) >= 7 {
		h.block = ev.Phone[:7]
	}
	// The most specific entry decides: the longest range holding the address (a listed address
	// is a /32 or /128).
	h.ipAddr = geo.ClientAddr(ev.IP)
	n, _ := l.ips.Lookup(h.ipAddr)
	h.ip, h.ipNet = n.action, n.net
	return h
}

type listsHolder struct{ p atomic.Pointer[keyedLists] }

func (h *listsHolder) Load() *keyedLists   { return h.p.Load() }
func (h *listsHolder) Store(l *keyedLists) { h.p.Store(l) }
