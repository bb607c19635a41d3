package loadgen

import (
	"net/netip"
	"time"
)

// How ordinary users move between networks (issue #14). Mobile carriers hand out cellular
// addresses from large pools that geolocate badly (China Mobile's land all over China in
// GeoLite2), so these users are where impossible_travel false positives come from.
const (
	// cellularShare of users are on cellular data only and get a new address of their carrier's
	// cellular pool at each login (China Mobile: its NAT pool; China Unicom: 112.96.0.0/15;
	// China Telecom: an IPv6 /64 of 240e:400::/24).
	cellularShare = 0.25
	// wifiShare of users have home broadband (one fixed address) and switch to 4G for half of
	// their logins.
	wifiShare = 0.20
	// v6ChangeShare of the IPv6 users get a new /64 of their carrier's cellular prefix at each
	// login instead of keeping one.
	v6ChangeShare = 0.5
	// reloginShare of sessions are followed 2–30 minutes later by another login of the same user,
	// from wherever the user's profile puts the next login (a new cellular address, 4G after wifi).
	reloginShare = 0.15
	// flightShare of sessions start a trip: a traveller logs in from home broadband in Beijing or
	// Shanghai and again from broadband in the other city 2.5–3.5 hours later (a flight; about
	// 1,070 km, under 430 km/h).
	flightShare = 0.005
	// largeAppBlocks is how many 7-digit blocks the large app's users' numbers come from, and
	// largeAppNATDivisor the part of each carrier's NAT pool they share (at least largeAppMinNAT
	// addresses — a city's carrier-grade NAT has thousands —, at most the whole pool): a regional
	// app (a block belongs to one city), scaled down with the stream's rate.
	largeAppBlocks     = 1000
	largeAppNATDivisor = 20
	largeAppMinNAT     = 200
)

// Mobility profiles.
const (
	moveFixed    = iota // a home address behind carrier NAT (or an IPv6 /64) and its neighbour
	moveCellular        // a new cellular address at each login
	moveWifi            // home broadband, or 4G
)

var (
	// Cellular-only pools by carrier (all of China Mobile's NAT ranges are cellular pools).
	cellV4 = [numCarriers][]netip.Prefix{
		cm: natV4[cm],
		cu: prefixes("112.96.0.0/15"),
		ct: nil, // no IPv4 4G pool listed: China Telecom cellular users are on IPv6
	}
	cellV6 = [numCarriers][]netip.Prefix{
		cm: prefixes("2409:8900::/24"),
		cu: prefixes("2408:8400::/24"),
		ct: prefixes("240e:400::/24"),
	}
	// Fixed broadband by city, placed in that city by GeoLite2 (see geo_integration_test.go).
	broadbandBeijing  = prefixes("123.112.0.0/16", "106.120.0.0/17")
	broadbandShanghai = prefixes("58.246.0.0/15", "116.224.0.0/12")
	broadbandOther    = prefixes("14.16.0.0/12", "113.200.0.0/15", "171.8.0.0/13")
)

// broadband returns a home broadband address: in Beijing (city 0), Shanghai (1) or elsewhere.
func broadband(r *rng, city int) netip.Addr {
	nets := broadbandOther
	switch city {
	case 0:
		nets = broadbandBeijing
	case 1:
		nets = broadbandShanghai
	}
	return addrIn(pick(r, nets), r.next(), r.next())
}

// cellularAddr returns a fresh cellular address of carrier c: from the shared NAT pool (China
// Mobile; within natPool addresses of it), from the carrier's IPv4 cellular ranges, or an IPv6 /64
// of its cellular prefix.
func (g *Generator) cellularAddr(r *rng, c, natPool int) netip.Addr {
	switch {
	case c == cm:
		return g.natAddr(c, r.intn(natPool))
	case len(cellV4[c]) > 0 && r.chance(0.7):
		return addrIn(pick(r, cellV4[c]), r.next(), r.next())
	}
	return addrIn(pick(r, cellV6[c]), r.next(), r.next())
}

// addrFor returns the address of a login of u: its profile decides.
func (g *Generator) addrFor(r *rng, u *user) netip.Addr {
	if u.fixed.IsValid() {
		return u.fixed
	}
	switch u.move {
	case moveCellular:
		return g.cellularAddr(r, u.carrier, u.natPool)
	case moveWifi:
		if r.chance(0.5) {
			return u.broadband
		}
		return g.cellularAddr(r, u.carrier, u.natPool)
	}
	if u.home.Is6() && u.v6Changes {
		return addrIn(pick(r, cellV6[u.carrier]), r.next(), r.next())
	}
	if r.chance(altAddrShare) {
		return u.alt
	}
	return u.home
}

// relogin queues another login of user ui 2–30 minutes after t and reports how many events it
// queued.
func (g *Generator) relogin(t time.Duration, ui int) int {
	r := &g.r
	u := g.user(ui)
	return g.login(t+r.dur(2*time.Minute, 30*time.Minute), &u, false)
}

// flight queues a trip of a new traveller: a login from home broadband in Beijing or Shanghai at
// t and one from broadband in the other city 2.5–3.5 hours later. Travellers are not in the
// session population, so no ordinary login of theirs comes from home while they are away.
func (g *Generator) flight(t time.Duration) int {
	r := &g.r
	tr := derive(g.key, 9, g.trips)
	g.trips++
	u := g.user(g.users + int(g.trips%(1<<30))) // beyond the session population's indexes
	from := tr.intn(2)
	u.move, u.fixed = moveFixed, broadband(&tr, from)
	n := g.login(t, &u, false)
	u.fixed = broadband(&tr, 1-from)
	return n + g.login(t+r.dur(150*time.Minute, 210*time.Minute), &u, false)
}
