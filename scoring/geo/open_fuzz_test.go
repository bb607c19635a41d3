package geo_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/bounded"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

// FuzzOpenDamagedDatabase opens damaged GeoLite2 files (a download cut short, a disk error, a
// file of something else) as the city and as the ASN database, and looks addresses up in what
// Open accepts. Whatever the bytes, Open and the lookups return within seconds and without a
// panic: a damaged database costs its lookups (LookupErrors), not the node.
//
//	go test -run '^$' -fuzz '^FuzzOpenDamagedDatabase$' -fuzztime 5m ./scoring/geo
func FuzzOpenDamagedDatabase(f *testing.F) {
	city, asn := geotest.Fixture(f)
	for _, p := range []string{city, asn} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	p := filepath.Join(dir, "damaged.mmdb")
	addrs := []netip.Addr{netip.MustParseAddr("39.156.1.2"), netip.MustParseAddr("2409:8c00::1"), netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("36.130.0.1"), netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("255.255.255.255")}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			t.Skip()
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("Open and 7 lookups of a %d-byte database", len(data))
		msg := bounded.Run(t, 20*time.Second, what, func() string {
			for _, paths := range [][2]string{{p, ""}, {city, p}} {
				l, err := geo.Open(paths[0], paths[1], geo.WithCacheSize(0))
				if err != nil {
					if err.Error() == "" {
						return "empty error"
					}
					continue
				}
				for _, a := range addrs {
					l.Lookup(a)
				}
			}
			return ""
		})
		if msg != "" {
			t.Fatalf("%s: %s", what, msg)
		}
	})
}
