package geo_test

import (
	"math"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

func TestDistanceKm(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"Beijing-Shanghai", geotest.BeijingLat, geotest.BeijingLon, geotest.ShanghaiLat, geotest.ShanghaiLon, 1068, 15},
		{"Beijing-Guangzhou", geotest.BeijingLat, geotest.BeijingLon, geotest.GuangzhouLat, geotest.GuangzhouLon, 1888, 20},
		{"same point", 30, 120, 30, 120, 0, 1e-9},
		{"one degree of latitude", 0, 0, 1, 0, 2 * math.Pi * geo.EarthRadiusKm / 360, 1e-6},
		{"antipodes", 0, 0, 0, 180, math.Pi * geo.EarthRadiusKm, 1e-6},
		{"pole to pole", 90, 0, -90, 0, math.Pi * geo.EarthRadiusKm, 1e-6},
		{"across the antimeridian", 0, 179.5, 0, -179.5, 2 * math.Pi * geo.EarthRadiusKm / 360, 1e-6},
	} {
		got := geo.DistanceKm(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
		if math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s: DistanceKm = %.3f, want %.3f ± %g", tc.name, got, tc.want, tc.tol)
		}
		if back := geo.DistanceKm(tc.lat2, tc.lon2, tc.lat1, tc.lon1); math.Abs(back-got) > 1e-9 {
			t.Errorf("%s: not symmetric: %v vs %v", tc.name, got, back)
		}
	}
}

func TestSpeedKmh(t *testing.T) {
	for _, tc := range []struct {
		dist float64
		dt   time.Duration
		want float64
	}{
		{1000, time.Hour, 1000},
		{1068, 30 * time.Minute, 2136},
		{100, -2 * time.Hour, 50},
		{500, 0, math.Inf(1)},
		{0, 0, 0},
		{0, time.Minute, 0},
		{10, math.MinInt64, 10 / math.Abs(time.Duration(math.MinInt64).Hours())},
	} {
		if got := geo.SpeedKmh(tc.dist, tc.dt); got != tc.want && math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("SpeedKmh(%v, %v) = %v, want %v", tc.dist, tc.dt, got, tc.want)
		}
	}
}

// The impossible_travel reading of the helpers, as documented on SpeedKmh.
func TestImpossibleTravelRule(t *testing.T) {
	impossible := func(lat1, lon1, lat2, lon2 float64, dt time.Duration) bool {
		d := geo.DistanceKm(lat1, lon1, lat2, lon2)
		return d >= geo.MinHopKm && geo.SpeedKmh(d, dt) > 1000
	}
	// Beijing to Shanghai in 20 minutes: impossible.
	if !impossible(geotest.BeijingLat, geotest.BeijingLon, geotest.ShanghaiLat, geotest.ShanghaiLon, 20*time.Minute) {
		t.Error("Beijing-Shanghai in 20 min not flagged")
	}
	// Beijing to Shanghai in 3 hours: a flight.
	if impossible(geotest.BeijingLat, geotest.BeijingLon, geotest.ShanghaiLat, geotest.ShanghaiLon, 3*time.Hour) {
		t.Error("Beijing-Shanghai in 3 h flagged")
	}
	// A 30 km hop in the same second: ignored.
	if impossible(39.9, 116.4, 40.17, 116.4, 0) {
		t.Error("30 km hop flagged")
	}
}
