//go:build integration

package loadgen

import (
	"net/netip"
	"os"
	"testing"

	"github.com/riskflow/riskflow/scoring/geo"
)

// TestRangesInGeoLite2 checks the generator's address ranges against the real GeoLite2 data:
// carrier NAT and domestic-cloud addresses are in mainland China, overseas-proxy addresses are in
// the country they are listed under.
//
//	RISKFLOW_GEO_CITY=$(deploy/local/geo.sh path) go test -tags integration ./pipeline/loadgen/
func TestRangesInGeoLite2(t *testing.T) {
	city := os.Getenv("RISKFLOW_GEO_CITY")
	if city == "" {
		t.Skip("RISKFLOW_GEO_CITY is not set (see deploy/local/geo.sh)")
	}
	loc, err := geo.Open(city, "", geo.WithIDCList(geo.DefaultIDCList()))
	if err != nil {
		t.Fatal(err)
	}
	r := rng{s: 77}
	check := func(what, want string, nets []netip.Prefix) {
		t.Helper()
		for _, p := range nets {
			for range 200 {
				a := addrIn(p, r.next(), r.next())
				if got := loc.Lookup(a).Country; got != want {
					t.Errorf("%s %s (%s): country %q, want %q", what, a, p, got, want)
					break
				}
			}
		}
	}
	for c := range natV4 {
		check("carrier NAT", "CN", natV4[c])
		check("carrier IPv6", "CN", natV6[c])
	}
	check("domestic cloud", "CN", idcDomestic)
	for _, o := range overseas {
		check("overseas proxy", o.country, o.nets)
	}

	// And the benign stream as a whole never leaves mainland China.
	for _, l := range sharedStream(t) {
		if l.Label == LabelBenign {
			if g := loc.Lookup(l.Event.IP); g.Country != "CN" || g.IPType != "" {
				t.Fatalf("benign address %s: %+v", l.Event.IP, g)
			}
		}
	}
}
