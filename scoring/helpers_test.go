package scoring_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

// t0 is the event time most tests score at.
var t0 = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

var testKey = []byte("riskflow-test-key")

// newScorer builds a scorer with the test phone hasher and compiles pack (the default pack when
// pack is nil) against it.
func newScorer(tb testing.TB, cfg scoring.Config, pack []byte, opts ...scoring.Option) *scoring.Scorer {
	tb.Helper()
	opts = append([]scoring.Option{scoring.WithPhoneHasher(schemas.NewPhoneHasher(testKey))}, opts...)
	s, err := scoring.New(cfg, opts...)
	if err != nil {
		tb.Fatalf("scoring.New: %v", err)
	}
	if pack == nil {
		pack = packs.Default()
	}
	p, err := rules.Compile(pack, s.Env())
	if err != nil {
		tb.Fatalf("compile pack: %v", err)
	}
	s.SetPack(p)
	return s
}

// fixtureGeo opens the geotest City/ASN fixture with the IDC list given (nil: none).
func fixtureGeo(tb testing.TB, idc *geo.CIDRSet) *geo.Locator {
	tb.Helper()
	city, asn := geotest.Fixture(tb)
	var opts []geo.Option
	if idc != nil {
		opts = append(opts, geo.WithIDCList(idc))
	}
	loc, err := geo.Open(city, asn, opts...)
	if err != nil {
		tb.Fatalf("geo.Open: %v", err)
	}
	return loc
}

// event returns a valid, successful event; id must be unique per distinct event.
func event(id string, ts time.Time, phone, ip string) schemas.VerifyEvent {
	return schemas.VerifyEvent{
		EventID:  id,
		TS:       ts,
		AppID:    "app-test",
		Flow:     schemas.FlowOneClickLogin,
		Phone:    phone,
		IP:       netip.MustParseAddr(ip),
		Carrier:  "CM",
		Platform: "android",
		Outcome:  schemas.OutcomeSuccess,
	}
}

// hits returns the ids of the rules a record matched.
func hits(rec schemas.ScoreRecord) map[string]bool {
	m := map[string]bool{}
	for _, h := range rec.Hits {
		m[h.Rule] = true
	}
	return m
}

// population is a deterministic set of phones, IPs and devices shaped like real traffic: each
// number has a carrier (the one its segment belongs to), a device and a home city, and verifies
// from addresses of its city.
type population struct {
	phones   []string
	carriers []string
	devices  []string
	homes    []int          // phone → city
	ips      [][]netip.Addr // city → addresses
}

// Basic segments of the three carriers (see segments.tsv).
var basicPrefixes = map[string][]string{
	"CM": {"135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182", "183", "187", "188"},
	"CU": {"130", "131", "132", "155", "156", "185", "186"},
	"CT": {"133", "153", "177", "180", "181", "189", "199"},
}

// The fixture's Beijing, Guangdong and Shanghai networks (all /16s).
var cityNets = [][2]byte{{39, 156}, {120, 196}, {101, 226}}

func newPopulation(phones, ips int) *population {
	r := rand.New(rand.NewPCG(1, 2))
	p := &population{ips: make([][]netip.Addr, len(cityNets))}
	seen := map[string]bool{}
	carriers := []string{"CM", "CM", "CM", "CU", "CT"} // China Mobile has most subscribers
	for len(p.phones) < phones {
		c := carriers[r.IntN(len(carriers))]
		segs := basicPrefixes[c]
		ph := fmt.Sprintf("%s%08d", segs[r.IntN(len(segs))], r.IntN(100_000_000))
		if !seen[ph] {
			seen[ph] = true
			p.phones = append(p.phones, ph)
			p.carriers = append(p.carriers, c)
			p.devices = append(p.devices, fmt.Sprintf("dev-%016x", r.Uint64()))
			p.homes = append(p.homes, r.IntN(len(cityNets)))
		}
	}
	for i := 0; i < ips; i++ {
		c := i % len(cityNets)
		v := i / len(cityNets)
		n := cityNets[c]
		p.ips[c] = append(p.ips[c], netip.AddrFrom4([4]byte{n[0], n[1], byte(v >> 8), byte(v)}))
	}
	return p
}

// ip returns a random address of phone i's home city.
func (p *population) ip(r *rand.Rand, i int) netip.Addr {
	city := p.ips[p.homes[i]]
	return city[r.IntN(len(city))]
}

// warm applies 1–3 events per phone, spread over the hour before end, from addresses of the
// phone's city; one in ten fails. It returns the number of events applied.
func (p *population) warm(tb testing.TB, s *scoring.Scorer, end time.Time) int {
	tb.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	n := 0
	for i, ph := range p.phones {
		k := 1 + r.IntN(3)
		for j := 0; j < k; j++ {
			ev := schemas.VerifyEvent{
				EventID:  fmt.Sprintf("warm-%d-%d", i, j),
				TS:       end.Add(-time.Duration(r.IntN(3600)) * time.Second),
				AppID:    "app-7c41d9",
				Flow:     schemas.FlowOneClickLogin,
				Phone:    ph,
				IP:       p.ip(r, i),
				Carrier:  p.carriers[i],
				Platform: "android",
				DeviceID: p.devices[i],
				Outcome:  schemas.OutcomeSuccess,
			}
			if r.IntN(10) == 0 {
				ev.Outcome, ev.ErrorCode = schemas.OutcomeFail, "103911"
			}
			if !s.Apply(&ev) {
				tb.Fatalf("warm: event %s not applied", ev.EventID)
			}
			n++
		}
	}
	return n
}

// withProbes appends to pack (the default pack when nil) one shadow rule per variable that always
// matches and whose reason is the variable's value, so tests read any variable off a record's hits
// (see probes). Shadow rules never change the score.
func withProbes(pack []byte, names ...string) []byte {
	if pack == nil {
		pack = packs.Default()
	}
	out := append([]byte(nil), pack...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	for _, n := range names {
		out = fmt.Appendf(out, "  - id: probe_%s\n    tag: probe\n    level: 300\n    mode: shadow\n    when: \"true\"\n    reason: \"{%s}\"\n", n, n)
	}
	return out
}

// probes returns the probed variables of a record: name → rendered value.
func probes(hits []schemas.RuleHit) map[string]string {
	m := map[string]string{}
	for _, h := range hits {
		if name, ok := strings.CutPrefix(h.Rule, "probe_"); ok {
			m[name] = h.Reason
		}
	}
	return m
}

// probePack is a pack holding only probes.
func probePack(names ...string) []byte {
	return withProbes([]byte("pack: probe\nrules:\n"), names...)
}
