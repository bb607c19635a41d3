package geo_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/riskflow/riskflow/scoring/geo"
)

func mustLoad(t *testing.T, text string) *geo.CIDRSet {
	t.Helper()
	s, err := geo.LoadCIDRList(strings.NewReader(text))
	if err != nil {
		t.Fatalf("LoadCIDRList: %v", err)
	}
	return s
}

func TestLoadCIDRListErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		want string
	}{
		{"10.0.0.0/8\nbogus\n", `line 2: "bogus" is not a CIDR network or IP address`},
		{"# c\n\n1.2.3.0/33 x\n", `line 3: "1.2.3.0/33" is not a CIDR network`},
		{"1.2.3.0/24\n  10.1.2.3/8   Provider\n", `line 2: "10.1.2.3/8" has host bits set (did you mean 10.0.0.0/8?)`},
		{"2001:db8::1/32\n", `line 1: "2001:db8::1/32" has host bits set (did you mean 2001:db8::/32?)`},
		{"fe80::1%eth0\n", `line 1: "fe80::1%eth0": zones are not allowed`},
		{"1.2.3.4/\n", `line 1: "1.2.3.4/" is not a CIDR network`},
		{"10.0.0.300/8\n", `line 1: "10.0.0.300/8" is not a CIDR network: IPv4 field has value >255`},
	} {
		_, err := geo.LoadCIDRList(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadCIDRList(%q) = %v, want error containing %q", tc.text, err, tc.want)
		}
	}
	// Read errors are reported too.
	_, err := geo.LoadCIDRList(iotest.ErrReader(errors.New("disk on fire")))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error = %v", err)
	}
}

func TestCIDRSetContains(t *testing.T) {
	s := mustLoad(t, `
# comment line
10.0.0.0/8        private   # trailing comment
192.168.1.0/24    lab
192.168.2.0/24    lab (adjacent to the one above after merge? no: 1.255 -> 2.0 is adjacent)
172.16.5.4                a single host
100.64.0.0/10
100.64.0.0/16     inside the one above
0.0.0.0/32
255.255.255.255/32
2001:db8::/32     docs
2001:db8:1::/48   inside
2400:cb00::/32
::/128
ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
::ffff:198.18.0.0/111  mapped form of 198.18.0.0/15
fd00::/64
fd00:0:0:1::/64   adjacent
`)
	if got := s.Len(); got != 16 {
		t.Errorf("Len = %d, want 16", got)
	}
	in := []string{
		"10.0.0.0", "10.255.255.255", "10.1.2.3",
		"192.168.1.0", "192.168.1.255", "192.168.2.0", "192.168.2.255",
		"172.16.5.4", "100.64.0.0", "100.127.255.255", "0.0.0.0", "255.255.255.255",
		"::ffff:10.9.8.7", "198.18.0.1", "198.19.255.255",
		"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:1::5",
		"2400:cb00:1::1", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fd00::1", "fd00:0:0:1:ffff:ffff:ffff:ffff",
	}
	out := []string{
		"9.255.255.255", "11.0.0.0", "192.168.0.255", "192.168.3.0",
		"172.16.5.3", "172.16.5.5", "100.128.0.0", "0.0.0.1", "255.255.255.254",
		"198.17.255.255", "198.20.0.0",
		"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", "2400:cb01::", "::1",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "fd00:0:0:2::", "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"::a00:1", // IPv4-compatible (not mapped) form of 10.0.0.1 is IPv6
	}
	for _, ip := range in {
		if !s.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("Contains(%s) = false, want true", ip)
		}
	}
	for _, ip := range out {
		if s.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("Contains(%s) = true, want false", ip)
		}
	}
	if s.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}
}

func TestCIDRSetWholeSpace(t *testing.T) {
	s := mustLoad(t, "0.0.0.0/0\n::/0\n")
	for _, ip := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff::1", "::ffff:1.2.3.4"} {
		if !s.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("Contains(%s) = false", ip)
		}
	}
}

func TestCIDRSetEmptyAndNil(t *testing.T) {
	var nilSet *geo.CIDRSet
	empty := mustLoad(t, "# nothing\n\n   \n")
	for _, s := range []*geo.CIDRSet{nilSet, empty} {
		if s.Contains(netip.MustParseAddr("1.1.1.1")) || s.Contains(netip.MustParseAddr("::1")) || s.Len() != 0 {
			t.Errorf("empty set %v contains something", s)
		}
	}
}

// The brute-force check: Contains agrees with netip.Prefix.Contains over many
// addresses around every boundary.
func TestCIDRSetAgainstPrefixes(t *testing.T) {
	text := "1.0.0.0/24\n1.0.1.0/24\n1.0.0.128/25\n5.5.5.5/32\n8.0.0.0/7\n9.1.0.0/16\n" +
		"2001::/16\n2001:1::/32\n2002::/15\n2a00::/12\n2a0f:ffff::/32\n"
	s := mustLoad(t, text)
	var prefixes []netip.Prefix
	for _, f := range strings.Fields(text) {
		prefixes = append(prefixes, netip.MustParsePrefix(f))
	}
	contains := func(a netip.Addr) bool {
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, p := range prefixes {
		first := p.Addr()
		last := lastAddr(p)
		for _, a := range []netip.Addr{first, first.Prev(), first.Next(), last, last.Prev(), last.Next()} {
			if !a.IsValid() {
				continue
			}
			if got, want := s.Contains(a), contains(a); got != want {
				t.Errorf("Contains(%s) = %v, want %v", a, got, want)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestLoadCIDRFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idc.txt")
	if err := os.WriteFile(path, []byte("1.2.3.0/24 ok\n1.2.3.4/24 typo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := geo.LoadCIDRFile(path)
	if err == nil || !strings.Contains(err.Error(), path+": geo: cidr list line 2:") {
		t.Errorf("LoadCIDRFile error = %v", err)
	}
	if _, err := geo.LoadCIDRFile(path + ".missing"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestDefaultIDCList(t *testing.T) {
	s := geo.DefaultIDCList()
	if s.Len() < 20 {
		t.Fatalf("default list has only %d networks", s.Len())
	}
	// The shipped file parses on its own too (it is what the risk team edits).
	if _, err := geo.LoadCIDRFile("idc_cidrs.txt"); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"47.92.1.1", "3.5.140.2", "119.29.29.29", "2a01:4f8::1"} {
		if !s.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("default list misses %s", ip)
		}
	}
	// Carrier and public-resolver addresses must not be there.
	for _, ip := range []string{
		"39.156.66.10",  // China Mobile Beijing
		"120.196.10.20", // China Mobile Guangdong
		"101.226.4.6",   // China Telecom Shanghai
		"112.80.248.75", // China Unicom Jiangsu
		"114.114.114.114",
		"8.8.8.8",
		"2409:8c00::1", // China Mobile IPv6
	} {
		if s.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("default list contains carrier/public address %s", ip)
		}
	}
}

func BenchmarkCIDRSetContains(b *testing.B) {
	s := geo.DefaultIDCList()
	ips := []netip.Addr{
		netip.MustParseAddr("47.92.1.1"), netip.MustParseAddr("39.156.66.10"),
		netip.MustParseAddr("2a01:4f8::1"), netip.MustParseAddr("2409:8c00::1"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Contains(ips[i%len(ips)])
	}
}

// A phone number typed into a network field (the console's list form, the lists file) is not
// echoed by the error: netip's own message quoted the input again, inside ParsePrefix's
// (`ParseAddr("13912348765"): unable to parse IP`), and the console showed it.
func TestParseNetworkErrorsMaskPhones(t *testing.T) {
	for _, in := range []string{
		"13912348765/24", "13912348765", "+86 139 1234 8765/24", "1.2.3.0/13912348765",
		"139.1234.8765/8", "１３９１２３４８７６５/24", "13912348765%eth0",
	} {
		_, err := geo.ParseNetwork(in)
		if err == nil {
			t.Errorf("ParseNetwork(%q) accepted", in)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "8765") || strings.Contains(msg, "８７６５") || !strings.Contains(msg, "<phone>") || strings.Contains(msg, "  ") {
			t.Errorf("ParseNetwork(%q) = %q: want the number masked as <phone>", in, msg)
		}
	}
}
