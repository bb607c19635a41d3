package ruletest_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
	"github.com/riskflow/riskflow/scoring/ruletest"
)

// lists are the network lists `riskflow` loads by default: datacenter CIDRs, cloud ASes, mobile
// carrier networks.
func lists() []geo.Option {
	return []geo.Option{geo.WithIDCList(geo.DefaultIDCList()), geo.WithCloudList(geo.DefaultCloudList()), geo.WithMobileList(geo.DefaultMobileList())}
}

// idcOnly is the locator `riskflow rules test` has without a geo database and ASN data: the
// network lists.
func idcOnly(t testing.TB) *geo.Locator {
	t.Helper()
	loc, err := geo.Open("", "", lists()...)
	if err != nil {
		t.Fatalf("geo.Open (datacenter list only): %v", err)
	}
	return loc
}

// scorers returns a NewScorer building fresh scorers with loc and opts.
func scorers(loc *geo.Locator, opts ...scoring.Option) ruletest.NewScorer {
	return func() (*scoring.Scorer, error) {
		all := append([]scoring.Option{
			scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))),
			scoring.WithGeo(loc),
		}, opts...)
		return scoring.New(scoring.Config{}, all...)
	}
}

// runSuite runs tests against the default pack and reports every failing test by name.
func runSuite(t *testing.T, file string, tests []byte, newScorer ruletest.NewScorer) []ruletest.Result {
	t.Helper()
	results, err := ruletest.Run(packs.Default(), tests, newScorer)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(results) == 0 {
		t.Fatalf("%s: no tests ran", file)
	}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("%s: test %q (line %d) failed:\n\t%s\n\tverdict: score %d, tags %v, hits %v",
				file, r.Name, r.Line, strings.Join(r.Failures, "\n\t"), r.Verdict.Score, r.Verdict.Tags, hitIDs(r.Verdict))
		}
	}
	return results
}

func hitIDs(rec schemas.ScoreRecord) []string {
	out := make([]string, len(rec.Hits))
	for i, h := range rec.Hits {
		out[i] = h.Rule
	}
	return out
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDefaultPack runs rules/packs/default/tests.yaml the way `riskflow rules test` does without a
// geo database: datacenter list only, no lists.
func TestDefaultPack(t *testing.T) {
	runSuite(t, "rules/packs/default/tests.yaml", packs.DefaultTests(), scorers(idcOnly(t)))
}

// geoFixture is the geotest standard City fixture plus Tianjin (107 km from Beijing) and Xi'an
// (905 km) fixed-broadband ranges, for hops just around the impossible_travel limits, with the
// fixture's ASN entries as CSV ASN data (as deploy/local/geo.sh installs it) and the default
// network lists: the China Mobile ranges (Beijing 39.156.0.0/16, Guangzhou 120.196.0.0/16) are
// mobile, so their locations are not confident.
func geoFixture(t *testing.T) *geo.Locator {
	t.Helper()
	city := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	geotest.WriteCity(t, city, append(geotest.CityEntries(),
		geotest.CityEntry{Network: "111.160.0.0/16", Country: "CN", Province: "Tianjin", City: "Tianjin", Lat: 39.1422, Lon: 117.1767},
		geotest.CityEntry{Network: "113.200.0.0/16", Country: "CN", Province: "Shaanxi", City: "Xi'an", Lat: 34.3416, Lon: 108.9398}))
	entries := append(geotest.ASNEntries(),
		geotest.ASNEntry{Network: "111.160.0.0/16", ASN: 4837, Org: "CHINA UNICOM China169 Backbone"},
		geotest.ASNEntry{Network: "113.200.0.0/16", ASN: 4837, Org: "CHINA UNICOM China169 Backbone"})
	var csv strings.Builder
	for _, e := range entries {
		p := netip.MustParsePrefix(e.Network)
		last := p.Addr().As16()
		bits := p.Bits()
		if p.Addr().Is4() {
			bits += 96
		}
		for i := bits; i < 128; i++ {
			last[i/8] |= 1 << (7 - i%8)
		}
		hi := netip.AddrFrom16(last)
		if p.Addr().Is4() {
			hi = hi.Unmap()
		}
		fmt.Fprintf(&csv, "%s,%s,%d,%q\n", p.Addr(), hi, e.ASN, e.Org)
	}
	tab, err := geo.LoadASNCSV(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open(city, "", append(lists(), geo.WithASNTable(tab))...)
	if err != nil {
		t.Fatalf("geo.Open: %v", err)
	}
	return loc
}

func testProvinces(t *testing.T) *scoring.Provinces {
	t.Helper()
	p, err := scoring.LoadProvinces(filepath.Join("testdata", "provinces.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDefaultPackGeoRules covers the rules tests.yaml cannot: they need a geo database.
func TestDefaultPackGeoRules(t *testing.T) {
	runSuite(t, "testdata/geo-tests.yaml", readTestdata(t, "geo-tests.yaml"), scorers(geoFixture(t), scoring.WithProvinces(testProvinces(t))))
}

func testLists(t *testing.T) *scoring.Lists {
	t.Helper()
	l, err := scoring.LoadLists(filepath.Join("testdata", "lists.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testPorted(t *testing.T) *scoring.Ported {
	t.Helper()
	p, err := scoring.LoadPorted(filepath.Join("testdata", "ported.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDefaultPackPorted covers carrier_mismatch with a ported-numbers list.
func TestDefaultPackPorted(t *testing.T) {
	runSuite(t, "testdata/ported-tests.yaml", readTestdata(t, "ported-tests.yaml"), scorers(idcOnly(t), scoring.WithPorted(testPorted(t))))
}

// TestDefaultPackLists covers the blocklist rule, which needs a lists file.
func TestDefaultPackLists(t *testing.T) {
	runSuite(t, "testdata/lists-tests.yaml", readTestdata(t, "lists-tests.yaml"), scorers(idcOnly(t), scoring.WithLists(testLists(t))))
}

// TestDefaultPackCoverage holds the default pack to its promise: every rule has a test where it
// matches (named in hits, or its tag in tags while the rule matched) and a test that says it must
// not match (named in not_hits, or its tag in not_tags), across tests.yaml and the geo and lists
// suites. A new rule without both fails here.
func TestDefaultPackCoverage(t *testing.T) {
	type suite struct {
		file  string
		tests []byte
		mk    ruletest.NewScorer
	}
	suites := []suite{
		{"rules/packs/default/tests.yaml", packs.DefaultTests(), scorers(idcOnly(t))},
		{"testdata/geo-tests.yaml", readTestdata(t, "geo-tests.yaml"), scorers(geoFixture(t), scoring.WithProvinces(testProvinces(t)))},
		{"testdata/lists-tests.yaml", readTestdata(t, "lists-tests.yaml"), scorers(idcOnly(t), scoring.WithLists(testLists(t)))},
		{"testdata/ported-tests.yaml", readTestdata(t, "ported-tests.yaml"), scorers(idcOnly(t), scoring.WithPorted(testPorted(t)))},
	}
	s, err := scorers(idcOnly(t))()
	if err != nil {
		t.Fatal(err)
	}
	pack, err := rules.Compile(packs.Default(), s.Env())
	if err != nil {
		t.Fatal(err)
	}
	positive := map[string][]string{}
	negative := map[string][]string{}
	for _, su := range suites {
		parsed, err := rules.ParseTests(su.tests)
		if err != nil {
			t.Fatalf("%s: %v", su.file, err)
		}
		results, err := ruletest.Run(packs.Default(), su.tests, su.mk)
		if err != nil {
			t.Fatalf("%s: %v", su.file, err)
		}
		for i, tc := range parsed.Tests {
			r := results[i]
			if !r.Passed() {
				continue // reported by the suite's own test
			}
			hit := hitIDs(r.Verdict)
			for _, rule := range pack.Rules {
				e := tc.Expect
				if slices.Contains(e.Hits, rule.ID) || (slices.Contains(e.Tags, rule.Tag) && slices.Contains(hit, rule.ID)) {
					positive[rule.ID] = append(positive[rule.ID], tc.Name)
				}
				if slices.Contains(e.NotHits, rule.ID) || slices.Contains(e.NotTags, rule.Tag) {
					negative[rule.ID] = append(negative[rule.ID], tc.Name)
				}
			}
		}
	}
	for _, rule := range pack.Rules {
		if len(positive[rule.ID]) == 0 {
			t.Errorf("rule %s: no test expects it to match (hits: [%s], or tags: [%s] where it matches)", rule.ID, rule.ID, rule.Tag)
		}
		if len(negative[rule.ID]) == 0 {
			t.Errorf("rule %s: no test expects it not to match (not_hits: [%s] or not_tags: [%s])", rule.ID, rule.ID, rule.Tag)
		}
	}
}

// TestDefaultPackNATVersusDatacenter pins the product requirement on the shipped tests: the
// carrier-NAT crowd stays at or under 300 and the datacenter burst is blocked. It fails if either
// test disappears from tests.yaml or its expectation is loosened.
func TestDefaultPackNATVersusDatacenter(t *testing.T) {
	results, err := ruletest.Run(packs.Default(), packs.DefaultTests(), scorers(idcOnly(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]func(score int) bool{
		"forty ordinary users behind one carrier NAT address are only observed":   func(s int) bool { return s <= 300 },
		"forty app and H5 users behind one carrier NAT address are only observed": func(s int) bool { return s <= 300 },
		"fifteen numbers from one datacenter address are blocked":                 func(s int) bool { return s == 900 },
	}
	for name, ok := range want {
		i := slices.IndexFunc(results, func(r ruletest.Result) bool { return r.Name == name })
		if i < 0 {
			t.Errorf("tests.yaml has no test %q", name)
			continue
		}
		if r := results[i]; !ok(r.Verdict.Score) {
			t.Errorf("%q: score %d (tags %v)", name, r.Verdict.Score, r.Verdict.Tags)
		}
	}
}
