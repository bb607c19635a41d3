package geo_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/scoring/geo"
)

// asnCSV is a small file in the @ip-location-db/asn layout, real allocations of the named
// operators (test data, not authoritative).
const asnCSV = `1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
47.92.0.0,47.95.255.255,37963,"Hangzhou Alibaba Advertising Co.,Ltd."
223.104.0.0,223.104.255.255,56048,China Mobile Communications Corporation
117.136.0.0,117.136.255.255,9808,China Mobile
123.112.0.0,123.127.255.255,4808,China Unicom Beijing Province Network
2408:8000::,2408:8000::ffff:ffff:ffff:ffff:ffff,4837,CHINA UNICOM China169 Backbone
2409:8900::,2409:89ff:ffff:ffff:ffff:ffff:ffff:ffff,9808,China Mobile
`

func loadASN(t testing.TB, text string) *geo.ASNTable {
	t.Helper()
	tab, err := geo.LoadASNCSV(strings.NewReader(text))
	if err != nil {
		t.Fatalf("LoadASNCSV: %v", err)
	}
	return tab
}

func TestASNTableLookup(t *testing.T) {
	tab := loadASN(t, asnCSV)
	cases := []struct {
		ip   string
		asn  uint32
		org  string
		desc string
	}{
		{"1.0.0.0", 13335, "Cloudflare, Inc.", "first address of a range; quoted organisation with a comma"},
		{"1.0.0.255", 13335, "Cloudflare, Inc.", "last address of a range (inclusive)"},
		{"1.0.1.0", 0, "", "just after a range"},
		{"0.255.255.255", 0, "", "before the first range"},
		{"47.93.1.2", 37963, "Hangzhou Alibaba Advertising Co.,Ltd.", "inside"},
		{"223.104.3.17", 56048, "China Mobile Communications Corporation", "inside"},
		{"::ffff:223.104.3.17", 56048, "China Mobile Communications Corporation", "IPv4-mapped IPv6"},
		{"255.255.255.255", 0, "", "after the last range"},
		{"2408:8000::1", 4837, "CHINA UNICOM China169 Backbone", "IPv6"},
		{"2409:8962:1::5", 9808, "China Mobile", "IPv6 inside a /24"},
		{"2408:8000:1::1", 0, "", "IPv6 just after a range"},
		{"::1", 0, "", "IPv6 before the first range"},
	}
	for _, c := range cases {
		asn, org := tab.Lookup(netip.MustParseAddr(c.ip))
		if asn != c.asn || org != c.org {
			t.Errorf("%s (%s): got AS%d %q, want AS%d %q", c.ip, c.desc, asn, org, c.asn, c.org)
		}
	}
	if got := tab.Org(9808); got != "China Mobile" {
		t.Errorf("Org(9808) = %q", got)
	}
	if got := tab.Org(1); got != "" {
		t.Errorf("Org(1) = %q, want empty", got)
	}
	if v4, v6 := tab.Len(); v4 != 5 || v6 != 2 {
		t.Errorf("Len = %d, %d; want 5, 2", v4, v6)
	}
	var nilTab *geo.ASNTable
	if asn, org := nilTab.Lookup(netip.MustParseAddr("1.0.0.1")); asn != 0 || org != "" {
		t.Error("nil table answers")
	}
}

// TestASNTableMatchesLinearScan holds the binary search to a linear scan over random addresses,
// inside, at the ends of and between the ranges.
func TestASNTableMatchesLinearScan(t *testing.T) {
	tab := loadASN(t, asnCSV)
	type rng struct {
		lo, hi netip.Addr
		asn    uint32
	}
	var ranges []rng
	for _, line := range strings.Split(strings.TrimSpace(asnCSV), "\n") {
		f := strings.SplitN(line, ",", 4)
		var asn uint32
		fmt.Sscan(f[2], &asn)
		ranges = append(ranges, rng{netip.MustParseAddr(f[0]), netip.MustParseAddr(f[1]), asn})
	}
	r := rand.New(rand.NewPCG(1, 2))
	var probes []netip.Addr
	for _, x := range ranges {
		probes = append(probes, x.lo, x.hi, x.lo.Prev(), x.hi.Next())
	}
	for range 20000 {
		var b [4]byte
		b[0] = byte(r.IntN(256))
		if r.IntN(2) == 0 {
			b[0] = []byte{1, 47, 223, 117, 123}[r.IntN(5)]
		}
		b[1], b[2], b[3] = byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))
		probes = append(probes, netip.AddrFrom4(b))
		var v [16]byte
		copy(v[:], []byte{0x24, 0x08 + byte(r.IntN(2)), 0x80 + byte(r.IntN(0x20)), byte(r.IntN(256))})
		for i := 4; i < 16; i++ {
			v[i] = byte(r.IntN(256))
		}
		probes = append(probes, netip.AddrFrom16(v))
	}
	for _, p := range probes {
		if !p.IsValid() {
			continue
		}
		var want uint32
		for _, x := range ranges {
			if x.lo.BitLen() == p.BitLen() && x.lo.Compare(p) <= 0 && p.Compare(x.hi) <= 0 {
				want = x.asn
			}
		}
		if got, _ := tab.Lookup(p); got != want {
			t.Fatalf("%s: AS%d, linear scan says AS%d", p, got, want)
		}
	}
}

func TestLoadASNCSVErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1.0.0.0,1.0.0.255,13335\n", "wrong number of fields"},
		{"1.0.0.x,1.0.0.255,13335,X\n", `line 1: first address "1.0.0.x"`},
		{"1.0.0.0,1.0.0.255,13335,X\n2.0.0.0,1.0.0.0,1,Y\n", "line 2: range 2.0.0.0–1.0.0.0 ends before it starts"},
		{"1.0.0.0,2001::,1,X\n", "mixes IPv4 and IPv6"},
		{"1.0.0.0,1.0.0.255,AS13335,X\n", `as number "AS13335" is not a number`},
		{"", "no ranges"},
	}
	for _, c := range cases {
		_, err := geo.LoadASNCSV(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

// TestASNTableOverlap: the range that starts first keeps shared addresses; a range inside another
// is dropped; both are counted.
func TestASNTableOverlap(t *testing.T) {
	tab := loadASN(t, "1.0.0.0,1.0.0.255,1,A\n1.0.0.128,1.0.1.255,2,B\n1.0.0.10,1.0.0.20,3,C\n2001::,2001::ff,4,D\n2001::80,2001::1ff,5,E\n")
	for ip, want := range map[string]uint32{"1.0.0.15": 1, "1.0.0.200": 1, "1.0.1.0": 2, "1.0.2.0": 0, "2001::90": 4, "2001::100": 5} {
		if got, _ := tab.Lookup(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: AS%d, want AS%d", ip, got, want)
		}
	}
	if tab.Clipped() != 3 {
		t.Errorf("Clipped = %d, want 3", tab.Clipped())
	}
}

func TestLoadASNDir(t *testing.T) {
	dir := t.TempDir()
	v4, v6, _ := strings.Cut(asnCSV, "2408:")
	os.WriteFile(filepath.Join(dir, "asn-ipv4.csv"), []byte(v4), 0o644)
	os.WriteFile(filepath.Join(dir, "asn-ipv6.csv"), []byte("2408:"+v6), 0o644)
	tab, err := geo.LoadASNDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if asn, _ := tab.Lookup(netip.MustParseAddr("2409:8900::1")); asn != 9808 {
		t.Errorf("IPv6 file not loaded: AS%d", asn)
	}
	if asn, _ := tab.Lookup(netip.MustParseAddr("117.136.0.1")); asn != 9808 {
		t.Errorf("IPv4 file not loaded: AS%d", asn)
	}
	os.Remove(filepath.Join(dir, "asn-ipv6.csv"))
	if _, err := geo.LoadASNDir(dir); err == nil || !strings.Contains(err.Error(), "asn-ipv6.csv") {
		t.Errorf("missing file: error %v, want one naming asn-ipv6.csv", err)
	}
}

// BenchmarkASNLookup: the lookup over a table the size of the real IPv4 file (410k ranges);
// compare with BenchmarkLookup (the City database) in the same run.
func BenchmarkASNLookup(b *testing.B) {
	var sb strings.Builder
	for i := range 410_000 {
		lo := uint32(i) * 10000
		fmt.Fprintf(&sb, "%s,%s,%d,Org %d\n", netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)}),
			netip.AddrFrom4([4]byte{byte((lo + 4999) >> 24), byte((lo + 4999) >> 16), byte((lo + 4999) >> 8), byte(lo + 4999)}), i%60000+1, i%60000)
	}
	tab := loadASN(b, sb.String())
	r := rand.New(rand.NewPCG(3, 4))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		v := r.Uint32()
		addrs[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n uint32
	for i := 0; i < b.N; i++ {
		a, _ := tab.Lookup(addrs[i&4095])
		n += a
	}
	_ = n
}
