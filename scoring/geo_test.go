package scoring_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

var geoVars = []string{"geo_known", "ip_country", "ip_province", "ip_city", "ip_asn", "ip_type",
	"travel_km", "travel_kmh", "travel_minutes"}

func TestGeoVars(t *testing.T) {
	idc, err := geo.LoadCIDRList(strings.NewReader(geotest.DatacenterNetwork + " alibaba cloud\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newScorer(t, scoring.Config{}, withProbes(nil, geoVars[:6]...), scoring.WithGeo(fixtureGeo(t, idc)))
	tests := []struct {
		name, phone, ip, flow string
		want                  map[string]string
		score                 int
		tags                  string
		reason                string
	}{
		{"Beijing mobile", "13800000001", geotest.BeijingMobileIP, schemas.FlowOneClickLogin,
			map[string]string{"geo_known": "true", "ip_country": "CN", "ip_province": "Beijing", "ip_city": "Beijing", "ip_asn": "9808", "ip_type": ""},
			0, "", ""},
		{"Beijing IPv6", "13800000002", geotest.BeijingMobileIPv6, schemas.FlowOneClickLogin,
			map[string]string{"geo_known": "true", "ip_country": "CN", "ip_province": "Beijing", "ip_city": "Beijing", "ip_asn": "9808", "ip_type": ""},
			0, "", ""},
		{"overseas on a gateway flow", "13800000003", geotest.USIP, schemas.FlowOneClickLogin,
			map[string]string{"geo_known": "true", "ip_country": "US", "ip_province": "California", "ip_city": "Mountain View", "ip_asn": "15169", "ip_type": ""},
			600, "overseas_ip", "IP in US, outside mainland China, on a carrier-gateway flow"},
		{"overseas on SMS fallback", "13800000004", geotest.USIP, schemas.FlowSMSFallback,
			map[string]string{"geo_known": "true", "ip_country": "US", "ip_province": "California", "ip_city": "Mountain View", "ip_asn": "15169", "ip_type": ""},
			0, "", ""},
		{"datacenter", "13800000005", geotest.DatacenterIP, schemas.FlowOneClickLogin,
			map[string]string{"geo_known": "true", "ip_country": "CN", "ip_province": "Hebei", "ip_city": "Zhangjiakou", "ip_asn": "37963", "ip_type": "idc"},
			600, "idc_proxy_ip", "datacenter/proxy IP (AS37963)"},
		{"unknown IP", "13800000006", geotest.UnknownIP, schemas.FlowOneClickLogin,
			map[string]string{"geo_known": "false", "ip_country": "", "ip_province": "", "ip_city": "", "ip_asn": "0", "ip_type": ""},
			0, "", ""},
	}
	for i, tc := range tests {
		ev := event("geo-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Hour), tc.phone, tc.ip)
		ev.Flow = tc.flow
		rec := process(t, s, ev)
		got := probes(rec.Hits)
		for k, w := range tc.want {
			if got[k] != w {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got[k], w)
			}
		}
		if rec.Score != tc.score || strings.Join(rec.Tags, ",") != tc.tags {
			t.Errorf("%s: score %d tags %v, want %d [%s]", tc.name, rec.Score, rec.Tags, tc.score, tc.tags)
		}
		if tc.reason != "" && rec.Detail[tc.tags].Reason != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, rec.Detail[tc.tags].Reason, tc.reason)
		}
		if got, want := rec.Geo.Country, tc.want["ip_country"]; got != want {
			t.Errorf("%s: record geo country %q, want %q", tc.name, got, want)
		}
	}

	// Without a locator geo signals are off.
	off := newScorer(t, scoring.Config{}, withProbes(nil, geoVars...))
	rec := process(t, off, event("nogeo", t0, "13800000007", geotest.USIP))
	if got := probes(rec.Hits); got["geo_known"] != "false" || got["ip_country"] != "" || rec.Score != 0 {
		t.Errorf("geo off: %v, score %d", got, rec.Score)
	}
}

// travel reads travel_km, travel_kmh and travel_minutes off a record.
func travel(t *testing.T, rec schemas.ScoreRecord) (km, kmh, minutes float64) {
	t.Helper()
	p := probes(rec.Hits)
	parse := func(name string) float64 {
		v, err := strconv.ParseFloat(p[name], 64)
		if err != nil {
			t.Fatalf("%s = %q: %v", name, p[name], err)
		}
		return v
	}
	return parse("travel_km"), parse("travel_kmh"), parse("travel_minutes")
}

func TestImpossibleTravel(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, geoVars[6:]...), scoring.WithGeo(fixtureGeo(t, nil)))
	const phone = "13800000001"
	bj := event("tr-1", t0, phone, geotest.BeijingMobileIP)
	rec := process(t, s, bj)
	if km, kmh, min := travel(t, rec); km != 0 || kmh != 0 || min != 0 || rec.Score != 0 {
		t.Fatalf("first located attempt: %v %v %v, score %d", km, kmh, min, rec.Score)
	}

	us := event("tr-2", t0.Add(5*time.Minute), phone, geotest.USIP)
	us.Flow = schemas.FlowSMSFallback // keep overseas_ip out of the verdict
	rec = process(t, s, us)
	wantKm := geo.DistanceKm(geotest.BeijingLat, geotest.BeijingLon, 37.386, -122.0838)
	km, kmh, min := travel(t, rec)
	if math.Abs(km-wantKm) > 1 || math.Abs(kmh-wantKm*12) > 12 || min != 5 {
		t.Errorf("Beijing → US in 5 min: %v km, %v km/h, %v min; want %.0f km, %.0f km/h, 5 min", km, kmh, min, wantKm, wantKm*12)
	}
	if rec.Score != 600 || strings.Join(rec.Tags, ",") != "impossible_travel" || !hits(rec)["impossible_travel"] || !hits(rec)["impossible_travel_far"] {
		t.Errorf("Beijing → US in 5 min: score %d, tags %v, hits %v", rec.Score, rec.Tags, rec.Hits)
	}
	if r := rec.Detail["impossible_travel"].Reason; !strings.Contains(r, " km in 5 min (") {
		t.Errorf("reason %q", r)
	}

	// Re-delivered, the US attempt is scored as it was the first time.
	again := process(t, s, us)
	if km2, kmh2, min2 := travel(t, again); km2 != km || kmh2 != kmh || min2 != min || again.Score != rec.Score {
		t.Errorf("re-delivered: %v %v %v score %d; first time %v %v %v score %d", km2, kmh2, min2, again.Score, km, kmh, min, rec.Score)
	}

	// A hop shorter than a minute is timed as its seconds, as its reason shows it ("in 20 s"): it
	// was timed as one minute, and its reason read "in 0.33 min" at the speed of a minute.
	quick := newScorer(t, scoring.Config{}, probePack(geoVars[6:]...), scoring.WithGeo(fixtureGeo(t, nil)))
	process(t, quick, event("q-1", t0, phone, geotest.BeijingMobileIP))
	_, kmh, min = travel(t, process(t, quick, event("q-2", t0.Add(20*time.Second), phone, geotest.ShanghaiIP)))
	wantKm = geo.DistanceKm(geotest.BeijingLat, geotest.BeijingLon, geotest.ShanghaiLat, geotest.ShanghaiLon)
	if math.Abs(kmh-wantKm*180) > 180 || math.Abs(min-0.33) > 0.01 {
		t.Errorf("Beijing → Shanghai in 20 s: %v km/h, %v min; want %.0f km/h (timed as 20 s), 0.33 min", kmh, min, wantKm*180)
	}

	// A slow hop is travel but not impossible.
	slow := newScorer(t, scoring.Config{}, withProbes(nil, geoVars[6:]...), scoring.WithGeo(fixtureGeo(t, nil)))
	process(t, slow, event("s-1", t0, phone, geotest.BeijingMobileIP))
	rec = process(t, slow, event("s-2", t0.Add(4*time.Hour), phone, geotest.GuangdongIP))
	if km, kmh, _ := travel(t, rec); km < 1500 || kmh > 1000 || rec.Score != 0 {
		t.Errorf("Beijing → Guangzhou in 4 h: %v km at %v km/h, score %d", km, kmh, rec.Score)
	}
}

func TestTravelIgnoresShortHopsAndCentroids(t *testing.T) {
	// A fixture with two Beijing-area networks about 21 km apart.
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	entries := append(geotest.CityEntries(),
		geotest.CityEntry{Network: "58.30.0.0/16", Country: "CN", Province: "Beijing", City: "Tongzhou", Lat: 39.9093, Lon: 116.6566})
	geotest.WriteCity(t, city, entries)
	geotest.WriteASN(t, asn, geotest.ASNEntries())
	loc, err := geo.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	if d := geo.DistanceKm(geotest.BeijingLat, geotest.BeijingLon, 39.9093, 116.6566); d < 10 || d >= geo.MinHopKm {
		t.Fatalf("fixture hop is %v km", d)
	}
	s := newScorer(t, scoring.Config{}, withProbes(nil, geoVars[6:]...), scoring.WithGeo(loc))
	const phone = "13800000001"
	process(t, s, event("h-1", t0, phone, geotest.BeijingMobileIP))
	rec := process(t, s, event("h-2", t0.Add(time.Second), phone, "58.30.1.1"))
	if km, kmh, min := travel(t, rec); km != 0 || kmh != 0 || min != 0 || rec.Score != 0 {
		t.Errorf("21 km hop in a second: %v km %v km/h %v min, score %d; want it ignored", km, kmh, min, rec.Score)
	}
	// A country-only record carries the country's centroid, about 600 km from Beijing: not travel.
	rec = process(t, s, event("h-3", t0.Add(time.Minute), phone, geotest.CountryOnlyIP))
	if km, kmh, _ := travel(t, rec); km != 0 || kmh != 0 || hits(rec)["impossible_travel"] {
		t.Errorf("hop to the country centroid: %v km %v km/h, hits %v; want it ignored", km, kmh, rec.Hits)
	}
	// ... nor is a hop from it: the last city-level location is still Tongzhou, ~1 minute ago.
	rec = process(t, s, event("h-4", t0.Add(2*time.Minute), phone, geotest.BeijingMobileIP))
	if km, _, _ := travel(t, rec); km != 0 {
		t.Errorf("Tongzhou → Beijing: %v km, want ignored", km)
	}
}

// A number's attempts hopping between continents, all with one loginToken, scored by a scorer
// that kept up and by one that finds them all recorded already (its feed ran ahead: a backlog, a
// restart): the travel from the location before each attempt and the sightings before it are the
// same (before, the state kept the two newest locations only, and a token's first and last
// sightings: behind the feed the first hops found no travel and every sighting counted as
// earlier).
func TestImpossibleTravelBehindTheFeed(t *testing.T) {
	const phone = "13800000002"
	hops := []string{geotest.BeijingMobileIP, geotest.USIP, geotest.BeijingMobileIP, geotest.USIP, geotest.ShanghaiIP}
	var evs []schemas.VerifyEvent
	for i, ip := range hops {
		ev := event(fmt.Sprintf("hop-%d", i), t0.Add(time.Duration(i)*5*time.Minute), phone, ip)
		ev.Flow = schemas.FlowSMSFallback // keep overseas_ip out of the verdict
		ev.TokenDigest = strings.Repeat("5f", 32)
		evs = append(evs, ev)
	}
	alone := newScorer(t, scoring.Config{}, withProbes(nil, geoVars[6:]...), scoring.WithGeo(fixtureGeo(t, nil)))
	behind := newScorer(t, scoring.Config{}, withProbes(nil, geoVars[6:]...), scoring.WithGeo(fixtureGeo(t, nil)))
	if n := behind.ApplyBatch(slices.Clone(evs), nil); n != len(evs) {
		t.Fatalf("the feed applied %d of %d", n, len(evs))
	}
	travels := 0
	for i := range evs {
		want, got := process(t, alone, evs[i]), process(t, behind, evs[i])
		wkm, wkmh, wmin := travel(t, want)
		gkm, gkmh, gmin := travel(t, got)
		if gkm != wkm || gkmh != wkmh || gmin != wmin || got.Score != want.Score || !slices.Equal(got.Tags, want.Tags) ||
			got.Detail["token_replay"] != want.Detail["token_replay"] {
			t.Errorf("%s behind the feed: %.0f km %.0f km/h %.0f min, score %d %v %v; as it came: %.0f km %.0f km/h %.0f min, score %d %v %v",
				evs[i].EventID, gkm, gkmh, gmin, got.Score, got.Tags, got.Detail, wkm, wkmh, wmin, want.Score, want.Tags, want.Detail)
		}
		if hits(want)["impossible_travel"] {
			travels++
		}
	}
	if travels < 3 {
		t.Errorf("%d impossible travels in %d hops between continents: the test tests little", travels, len(hops))
	}
}
