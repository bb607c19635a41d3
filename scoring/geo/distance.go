package geo

import (
	"math"
	"time"
)

// EarthRadiusKm is the mean Earth radius used by DistanceKm.
const EarthRadiusKm = 6371.0

// MinHopKm is the shortest hop impossible_travel looks at: when two
// consecutive logins of one phone are less than 50 km apart the hop is
// ignored, whatever the speed. City-level geolocation of carrier IPs is only
// good to tens of kilometres (a phone in one city is often located in the
// province capital or the carrier's gateway city), so short hops are noise.
const MinHopKm = 50.0

// DistanceKm is the great-circle distance in kilometres between two points
// given in degrees, by the haversine formula on a sphere of radius
// EarthRadiusKm. Its error against the ellipsoid is below 0.5%, far under the
// accuracy of IP geolocation.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	dφ := (lat2 - lat1) * rad
	dλ := (lon2 - lon1) * rad
	sφ, sλ := math.Sin(dφ/2), math.Sin(dλ/2)
	h := sφ*sφ + math.Cos(φ1)*math.Cos(φ2)*sλ*sλ
	// Rounding can push h a hair outside [0, 1] for antipodal points.
	h = min(max(h, 0), 1)
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(h))
}

// SpeedKmh is the speed, in km/h, needed to cover distKm in dt. The sign of dt
// is ignored (events may arrive out of order). A zero dt gives +Inf for a
// positive distance and 0 for a zero one.
//
// The impossible_travel rule applies it like this: for two consecutive logins
// of one phone with known coordinates, compute d := DistanceKm(...); if
// d < MinHopKm the hop is ignored; otherwise the hop is impossible when
// SpeedKmh(d, t2-t1) is above about 1000 km/h (faster than a passenger jet
// including the trip to and from the airport). Both ends should have a City:
// a record with only a Country carries the country's centroid, and a hop to a
// centroid is not travel.
func SpeedKmh(distKm float64, dt time.Duration) float64 {
	h := math.Abs(dt.Hours())
	if h == 0 {
		if distKm > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return distKm / h
}
