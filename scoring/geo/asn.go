package geo

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ASNTable maps addresses to autonomous systems: the CSV range files of the npm package
// @ip-location-db/asn (RouteViews, the five RIRs' delegations and DB-IP's IP to ASN Lite, CC BY 4.0),
// held as sorted, disjoint ranges so that Lookup is a binary search that does not allocate. About
// 16 bytes per IPv4 range and 40 per IPv6 range (the 2026 files: ~410k and ~100k ranges, ~11 MB).
// A nil *ASNTable knows nothing. It is immutable and safe for concurrent use.
type ASNTable struct {
	v4      []span4[asRef]
	v6      []span6[asRef]
	orgs    []string          // by org index; orgs[0] = ""
	byASN   map[uint32]uint32 // AS number → org index (the first name seen for it)
	files   []string
	clipped int // ranges that overlapped an earlier one (see build)
}

// asRef is what a range of the table says: its AS number and the index of its organisation.
type asRef struct{ asn, org uint32 }

// ASNFiles are the files LoadASNDir reads from a directory, as the npm package ships them.
var ASNFiles = []string{"asn-ipv4.csv", "asn-ipv6.csv"}

// LoadASNDir reads the @ip-location-db/asn CSV files (ASNFiles) from dir (deploy/local/geo.sh
// install places them in $RISKFLOW_CACHE_DIR/geo/asn). Both must be there.
func LoadASNDir(dir string) (*ASNTable, error) {
	paths := make([]string, len(ASNFiles))
	for i, f := range ASNFiles {
		paths[i] = filepath.Join(dir, f)
	}
	return LoadASNFiles(paths...)
}

// LoadASNFiles reads one or more ASN range files into one table (see LoadASNCSV for the format).
// Errors name the file and the line.
func LoadASNFiles(paths ...string) (*ASNTable, error) {
	b := newASNBuilder()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("geo: asn data: %w", err)
		}
		err = b.read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("geo: asn data %s: %w", p, err)
		}
	}
	t, err := b.build()
	if err != nil {
		return nil, fmt.Errorf("geo: asn data %s: %w", strings.Join(paths, ", "), err)
	}
	t.files = slices.Clone(paths)
	return t, nil
}

// LoadASNCSV reads one range file: lines `first,last,as_number,as_organisation` where first and
// last are the inclusive ends of a range, both IPv4 or both IPv6 addresses, and the organisation is
// a CSV field (quoted when it holds a comma). IPv4 and IPv6 ranges may be mixed. Overlapping
// ranges are cut (see Clipped). Errors name the line and the field.
func LoadASNCSV(r io.Reader) (*ASNTable, error) {
	b := newASNBuilder()
	if err := b.read(r); err != nil {
		return nil, fmt.Errorf("geo: asn data: %w", err)
	}
	t, err := b.build()
	if err != nil {
		return nil, fmt.Errorf("geo: asn data: %w", err)
	}
	return t, nil
}

type asnBuilder struct {
	t     *ASNTable
	orgIx map[string]uint32
}

func newASNBuilder() *asnBuilder {
	return &asnBuilder{t: &ASNTable{orgs: []string{""}, byASN: map[uint32]uint32{}}, orgIx: map[string]uint32{"": 0}}
}

func (b *asnBuilder) read(r io.Reader) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 4
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err // csv errors name the line and column
		}
		line, _ := cr.FieldPos(0)
		lo, err := netip.ParseAddr(rec[0])
		if err != nil {
			return fmt.Errorf("line %d: first address %q: %w", line, rec[0], unwrapParse(err))
		}
		hi, err := netip.ParseAddr(rec[1])
		if err != nil {
			return fmt.Errorf("line %d: last address %q: %w", line, rec[1], unwrapParse(err))
		}
		lo, hi = lo.Unmap(), hi.Unmap()
		if lo.Is4() != hi.Is4() {
			return fmt.Errorf("line %d: range %s–%s mixes IPv4 and IPv6", line, rec[0], rec[1])
		}
		if hi.Less(lo) {
			return fmt.Errorf("line %d: range %s–%s ends before it starts", line, rec[0], rec[1])
		}
		n, err := strconv.ParseUint(rec[2], 10, 32)
		if err != nil {
			return fmt.Errorf("line %d: as number %q is not a number from 0 to 4294967295", line, rec[2])
		}
		asn := uint32(n)
		org, ok := b.orgIx[rec[3]]
		if !ok {
			org = uint32(len(b.t.orgs))
			name := strings.Clone(rec[3])
			b.t.orgs = append(b.t.orgs, name)
			b.orgIx[name] = org
		}
		if _, ok := b.t.byASN[asn]; !ok && asn != 0 {
			b.t.byASN[asn] = org
		}
		if lo.Is4() {
			b.t.v4 = append(b.t.v4, span4[asRef]{lo: v4num(lo), hi: v4num(hi), v: asRef{asn, org}})
		} else {
			b.t.v6 = append(b.t.v6, span6[asRef]{lo: addr128(lo), hi: addr128(hi), v: asRef{asn, org}})
		}
	}
}

func (b *asnBuilder) build() (*ASNTable, error) {
	t := b.t
	// Overlapping ranges (the 2026-06 files have one, 215.0.0.0–215.0.255.255 inside a DoD range)
	// are made disjoint: the range that starts first keeps the shared addresses, the other starts
	// after it (or is dropped when nothing is left), and Clipped counts them.
	slices.SortStableFunc(t.v4, func(a, b span4[asRef]) int { return cmpU32(a.lo, b.lo) })
	out4 := t.v4[:0]
	for _, r := range t.v4 {
		if n := len(out4); n > 0 && r.lo <= out4[n-1].hi {
			t.clipped++
			if r.hi <= out4[n-1].hi {
				continue
			}
			r.lo = out4[n-1].hi + 1
		}
		out4 = append(out4, r)
	}
	t.v4 = out4
	slices.SortStableFunc(t.v6, func(a, b span6[asRef]) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	out6 := t.v6[:0]
	for _, r := range t.v6 {
		if n := len(out6); n > 0 && !out6[n-1].hi.less(r.lo) {
			t.clipped++
			if !out6[n-1].hi.less(r.hi) {
				continue
			}
			r.lo, _ = out6[n-1].hi.next()
		}
		out6 = append(out6, r)
	}
	t.v6 = out6
	if len(t.v4)+len(t.v6) == 0 {
		return nil, errors.New("no ranges")
	}
	t.v4, t.v6 = slices.Clip(t.v4), slices.Clip(t.v6)
	return t, nil
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func v4num(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Lookup returns the autonomous system of ip and its organisation; 0 and "" when no range holds
// it. IPv4-mapped IPv6 addresses are looked up as IPv4.
func (t *ASNTable) Lookup(ip netip.Addr) (asn uint32, org string) {
	if t == nil {
		return 0, ""
	}
	r, ok := findSpan(t.v4, t.v6, ip)
	if !ok {
		return 0, ""
	}
	return r.asn, t.orgs[r.org]
}

// Org returns the organisation of an AS number as the data names it ("" when unknown).
func (t *ASNTable) Org(asn uint32) string {
	if t == nil {
		return ""
	}
	if i, ok := t.byASN[asn]; ok {
		return t.orgs[i]
	}
	return ""
}

// Len returns the number of IPv4 and IPv6 ranges.
func (t *ASNTable) Len() (v4, v6 int) {
	if t == nil {
		return 0, 0
	}
	return len(t.v4), len(t.v6)
}

// Clipped returns how many ranges overlapped a range that starts before them and were cut to
// fit (or dropped); the earlier range answers for the shared addresses.
func (t *ASNTable) Clipped() int {
	if t == nil {
		return 0
	}
	return t.clipped
}

// Files returns the files the table was loaded from.
func (t *ASNTable) Files() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.files)
}
