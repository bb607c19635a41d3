package geo_test

import (
	"strings"
	"testing"

	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

// The classification fingerprint is the same for the same data, in another Locator, and differs
// when any list that classifies addresses does: a snapshot's network keys are only good under
// the data they were derived with.
func TestClassFingerprint(t *testing.T) {
	city, asn := geotest.Fixture(t)
	open := func(idc, cloud, mobile string) string {
		t.Helper()
		var opts []geo.Option
		if idc != "" {
			s, err := geo.LoadCIDRList(strings.NewReader(idc))
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, geo.WithIDCList(s))
		}
		for _, l := range []struct {
			text string
			opt  func(*geo.NetList) geo.Option
		}{{cloud, geo.WithCloudList}, {mobile, geo.WithMobileList}} {
			if l.text == "" {
				continue
			}
			n, err := geo.LoadNetList(strings.NewReader(l.text))
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, l.opt(n))
		}
		loc, err := geo.Open(city, asn, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return loc.ClassFingerprint()
	}
	base := open("47.92.0.0/16\n", "AS37963\n", "AS9808\n223.104.0.0/16\n")
	if again := open("47.92.0.0/16\n", "AS37963\n", "AS9808\n223.104.0.0/16\n"); again != base {
		t.Errorf("the same data: %s, then %s", base, again)
	}
	for name, fp := range map[string]string{
		"another datacenter network": open("47.93.0.0/16\n", "AS37963\n", "AS9808\n223.104.0.0/16\n"),
		"another cloud AS":           open("47.92.0.0/16\n", "AS45102\n", "AS9808\n223.104.0.0/16\n"),
		"another mobile AS":          open("47.92.0.0/16\n", "AS37963\n", "AS9808\nAS4134\n223.104.0.0/16\n"),
		"another mobile network":     open("47.92.0.0/16\n", "AS37963\n", "AS9808\n223.105.0.0/16\n"),
		"no lists":                   open("", "", ""),
	} {
		if fp == base {
			t.Errorf("%s: the same fingerprint %s", name, fp)
		}
	}
	var none *geo.Locator
	if got := none.ClassFingerprint(); got != "none" {
		t.Errorf("no locator: %q", got)
	}
}
