package loadgen

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
	"github.com/riskflow/riskflow/scoring/scoringtest"
)

// geoFixture writes a Country database that places the generator's ranges: carrier NAT and the
// domestic clouds in CN, the overseas ranges in their countries, the foreign clouds in the US.
func geoFixture(t *testing.T) *geo.Locator {
	t.Helper()
	var entries []geotest.CityEntry
	add := func(country string, nets []netip.Prefix) {
		for _, p := range nets {
			entries = append(entries, geotest.CityEntry{Network: p.String(), Country: country})
		}
	}
	for c := range natV4 {
		add("CN", natV4[c])
		add("CN", natV6[c])
	}
	add("CN", idcDomestic)
	add("US", idcForeign)
	for _, o := range overseas {
		add(o.country, o.nets)
	}
	path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	geotest.WriteCountry(t, path, entries)
	loc, err := geo.Open(path, "", geo.WithIDCList(geo.DefaultIDCList()))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestDefaultPackFlagsScenarios scores a generated stream with the default rule pack and checks
// that each scenario raises the tag it is built for, while ordinary users are left alone. An
// episode's first events stay below the thresholds by design (the third number on a device, the
// tenth number of a block), hence the fractions below 1.
func TestDefaultPackFlagsScenarios(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("scores a two-hour stream")
	}
	s := scoringtest.DefaultPack(t, scoring.WithGeo(geoFixture(t)),
		scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("loadgen test"))))

	cfg := testConfig
	cfg.Rate = 8
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type tally struct {
		n, atLeast300, atLeast600 int
		tags                      map[string]int
	}
	tallies := map[string]*tally{}
	for {
		l, ok := g.Next()
		if !ok {
			break
		}
		rec, err := s.Process(&l.Event)
		if err != nil {
			t.Fatal(err)
		}
		tl := tallies[l.Label]
		if tl == nil {
			tl = &tally{tags: map[string]int{}}
			tallies[l.Label] = tl
		}
		tl.n++
		if rec.Score >= 300 {
			tl.atLeast300++
		}
		if rec.Score >= 600 {
			tl.atLeast600++
		}
		seen := map[string]bool{}
		for _, h := range rec.Hits {
			if h.Mode == "enforce" && !seen[h.Tag] {
				seen[h.Tag] = true
				tl.tags[h.Tag]++
			}
		}
	}

	frac := func(label string, count int) float64 { return float64(count) / float64(tallies[label].n) }
	for _, want := range []struct {
		label string
		tags  []string // any of them
		min   float64
	}{
		{ScenarioSMSPumping, []string{"prefix_burst"}, 0.5},
		{ScenarioDatacenterFarm, []string{"idc_proxy_ip"}, 0.99},
		{ScenarioDatacenterFarm, []string{"phones_per_ip"}, 0.5},
		{ScenarioDeviceFarm, []string{"phones_per_device"}, 0.75},
		{ScenarioTokenReplay, []string{"token_replay"}, 0.99},
		{ScenarioFailureHammering, []string{"repeated_failures"}, 0.6},
		{ScenarioOverseasProxy, []string{"overseas_ip"}, 0.99},
		{ScenarioVirtualNumbers, []string{"mvno_segment", "iot_or_data_card"}, 0.99},
		{ScenarioNumberVelocity, []string{"phone_velocity"}, 0.8},
	} {
		tl := tallies[want.label]
		if tl == nil {
			t.Errorf("%s: no events", want.label)
			continue
		}
		hits := 0
		for _, tag := range want.tags {
			hits += tl.tags[tag]
		}
		if got := frac(want.label, hits); got < want.min {
			t.Errorf("%s: %v on %.3f of %d events, want at least %.2f (tags seen: %v)", want.label, want.tags, got, tl.n, want.min, tl.tags)
		}
	}
	for _, label := range Scenarios() {
		if got := frac(label, tallies[label].atLeast300); got < 0.5 {
			t.Errorf("%s: only %.3f of events scored 300 or more", label, got)
		}
	}
	b := tallies[LabelBenign]
	if got := frac(LabelBenign, b.atLeast600); got > 0.002 {
		t.Errorf("benign: %.4f of %d events scored 600 or more (tags %v)", got, b.n, b.tags)
	}
	if got := frac(LabelBenign, b.atLeast300); got > 0.01 {
		t.Errorf("benign: %.4f of %d events scored 300 or more (tags %v)", got, b.n, b.tags)
	}
	t.Logf("benign: %d events, %.4f ≥ 300, %.4f ≥ 600, tags %v", b.n, frac(LabelBenign, b.atLeast300), frac(LabelBenign, b.atLeast600), b.tags)
}
