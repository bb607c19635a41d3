package loadgen

import (
	"errors"
	"net/netip"
	"strconv"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/segment"
)

// The three carriers a gateway reports, with their share of the benign population.
const (
	cm = iota
	cu
	ct
	numCarriers
)

var (
	carrierCodes  = [numCarriers]string{schemas.CarrierMobile, schemas.CarrierUnicom, schemas.CarrierTelecom}
	carrierShares = []float64{0.6, 0.2, 0.2}
)

// numberPlan lists 5-digit number blocks by what the segment table says about them. It is built
// from the table rather than written down here, so generated numbers follow the table when the
// risk team edits it: a benign number never lands in an MVNO, IoT, satellite or unallocated block.
type numberPlan struct {
	basic [numCarriers][]string // basic 11-digit blocks of CM, CU, CT
	// Virtual-number blocks by class; host is the carrier a gateway reports for them.
	mvno, dataOnly, iot []virtualBlock
}

type virtualBlock struct {
	prefix string // 5 digits
	host   string
	digits int // 11, or 13 for IoT numbering
}

func newNumberPlan(t *segment.Table) (*numberPlan, error) {
	p := &numberPlan{}
	for n := 10000; n <= 19999; n++ {
		prefix := strconv.Itoa(n)
		// The table resolves at most 5 digits, so any suffix stands for the whole block.
		switch info := t.Lookup(prefix + "000000"); info.Class {
		case segment.Basic:
			for c, code := range carrierCodes {
				if info.Carrier == code && info.HostCarrier == code {
					p.basic[c] = append(p.basic[c], prefix)
				}
			}
		case segment.MVNO:
			if info.HostCarrier != "" {
				p.mvno = append(p.mvno, virtualBlock{prefix, info.HostCarrier, 11})
			}
		case segment.DataOnly:
			if info.HostCarrier != "" {
				p.dataOnly = append(p.dataOnly, virtualBlock{prefix, info.HostCarrier, 11})
			}
		}
		if info := t.Lookup(prefix + "00000000"); info.Class == segment.IoT && info.HostCarrier != "" {
			p.iot = append(p.iot, virtualBlock{prefix, info.HostCarrier, 13})
		}
	}
	for c := range p.basic {
		if len(p.basic[c]) == 0 {
			return nil, errors.New("loadgen: the segment table has no basic blocks for " + carrierCodes[c])
		}
	}
	return p, nil
}

// basicNumber returns an ordinary 11-digit number of carrier c.
func (p *numberPlan) basicNumber(r *rng, c int) string {
	return withDigits(pick(r, p.basic[c]), 6, r.next())
}

// virtualNumber returns a number from an MVNO, data-only or IoT block, and the carrier a gateway
// reports for it.
func (p *numberPlan) virtualNumber(r *rng) (phone, carrier string) {
	classes := [][]virtualBlock{p.mvno, p.dataOnly, p.iot}
	weights := []float64{0.6, 0.25, 0.15}
	for i, c := range classes {
		if len(c) == 0 {
			weights[i] = 0
		}
	}
	blocks := classes[r.weighted(weights)]
	if len(blocks) == 0 { // a table without any virtual block: nothing better to offer
		return p.basicNumber(r, cm), carrierCodes[cm]
	}
	b := pick(r, blocks)
	return withDigits(b.prefix, b.digits-len(b.prefix), r.next()), b.host
}

// withDigits appends n pseudo-random decimal digits (n ≤ 19) taken from x to prefix.
func withDigits(prefix string, n int, x uint64) string {
	var buf [24]byte
	b := append(buf[:0], prefix...)
	for range n {
		b = append(b, byte('0'+x%10))
		x /= 10
	}
	return string(b)
}

// Carrier mobile-data ranges for the benign population's NAT addresses: large, long-standing
// allocations of the three carriers (GeoLite2 places all of them in mainland China), none of them
// in geo.DefaultIDCList. The tests check both.
var (
	natV4 = [numCarriers][]netip.Prefix{
		cm: prefixes("223.104.0.0/15", "117.136.0.0/14", "111.0.0.0/12", "183.192.0.0/12", "39.128.0.0/12"),
		cu: prefixes("112.96.0.0/15", "123.112.0.0/14", "58.246.0.0/15", "113.200.0.0/15"),
		ct: prefixes("106.120.0.0/17", "180.160.0.0/14", "14.16.0.0/12", "113.64.0.0/11", "171.8.0.0/13", "116.224.0.0/12"),
	}
	natV6 = [numCarriers][]netip.Prefix{
		cm: prefixes("2409:8900::/24", "2409:8a00::/24"),
		cu: prefixes("2408:8400::/24", "2408:8200::/24"),
		ct: prefixes("240e:300::/24", "240e:400::/24"),
	}
)

// Datacenter networks for datacenter_farm, all taken from idc_cidrs.txt (the tests check that
// geo.DefaultIDCList contains every address drawn from them). Mostly domestic clouds, as farms
// targeting Chinese apps mostly rent those.
var (
	idcDomestic = prefixes("47.92.0.0/14", "120.24.0.0/14", "121.40.0.0/14", "49.232.0.0/14",
		"81.68.0.0/14", "119.29.0.0/16", "124.70.0.0/15", "106.12.0.0/15", "139.9.0.0/16")
	idcForeign = prefixes("52.0.0.0/11", "167.99.0.0/16", "45.76.0.0/15", "78.46.0.0/15")
)

// Residential (non-datacenter) ranges outside mainland China for overseas_proxy: what a
// residential-proxy service exits through. GeoLite2 places each in the named country.
var overseas = []struct {
	country string
	nets    []netip.Prefix
}{
	{"US", prefixes("73.0.0.0/8", "24.0.0.0/12")},
	{"GB", prefixes("86.128.0.0/10")},
	{"DE", prefixes("79.192.0.0/10", "178.0.0.0/13", "2003::/19")},
	{"RU", prefixes("95.24.0.0/13")},
	{"JP", prefixes("126.0.0.0/8")},
	{"TW", prefixes("1.160.0.0/12")},
	{"HK", prefixes("219.76.0.0/14")},
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// addrIn returns an address inside p whose host bits come from a and b (b fills the low 64 bits
// of an IPv6 address). IPv4 addresses avoid .0 and .255.
func addrIn(p netip.Prefix, a, b uint64) netip.Addr {
	base := p.Masked().Addr()
	if base.Is4() {
		v := [4]byte(base.As4())
		host := uint32(a) & (1<<(32-p.Bits()) - 1)
		n := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]) | host
		if last := n & 0xff; last == 0 || last == 0xff {
			n = n&^0xff | (1 + uint32(b%254))
		}
		return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
	v := base.As16()
	hi := uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
		uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])
	if bitsLeft := 128 - p.Bits(); bitsLeft >= 64 {
		hi |= a & (1<<(bitsLeft-64) - 1)
	}
	var out [16]byte
	for i := range 8 {
		out[i] = byte(hi >> (56 - 8*i))
		out[8+i] = byte(b >> (56 - 8*i))
	}
	return netip.AddrFrom16(out)
}

// sameNet returns another address of a's IPv4 /24 or IPv6 /64, chosen by x.
func sameNet(a netip.Addr, x uint64) netip.Addr {
	if a.Is4() {
		v := a.As4()
		// v[3] is in 1..254 (addrIn avoids .0 and .255); move it by 1..253 places within 1..254.
		v[3] = byte(1 + (uint64(v[3]-1)+1+x%253)%254)
		return netip.AddrFrom4(v)
	}
	v := a.As16()
	for i := 8; i < 16; i++ {
		v[i] = byte(x >> (8 * (i - 8)))
	}
	return netip.AddrFrom16(v)
}

// Devices. Identifiers look like what SDKs report: a 64-bit ANDROID_ID in hex, an iOS IDFV (upper
// case UUID), a HarmonyOS ODID (lower case UUID), a 128-bit browser fingerprint for H5.
var (
	platforms      = []string{"android", "ios", "harmony", "h5"}
	platformShares = []float64{0.55, 0.30, 0.10, 0.05}
)

// deviceID is a device id of platform made from two draws. An id that riskflow would refuse as holding a phone-like number (a UUID whose last group is
// 0 and an 11-digit mobile number: -016964451361) is drawn again from the same two draws, so that
// every event generated is one riskflow takes and the stream stays the same for a seed.
func deviceID(platform string, a, b uint64) string {
	for {
		id := deviceIDLayout(platform, a, b)
		if !schemas.ContainsPhone(id) {
			return id
		}
		a, b = mix(a+golden), mix(b+golden)
	}
}

// deviceIDLayout writes a and b as platform's device ids do.
func deviceIDLayout(platform string, a, b uint64) string {
	const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
	var buf [36]byte
	switch platform {
	case "android":
		return string(hexDigits(buf[:0], a, 16, lower))
	case "h5":
		return string(hexDigits(hexDigits(buf[:0], a, 16, lower), b, 16, lower))
	}
	digitsOf := lower
	if platform == "ios" {
		digitsOf = upper
	}
	// UUID v4 layout: 8-4-4-4-12 with the version and variant nibbles set.
	a = a&^(0xf<<12) | 0x4<<12
	b = b&^(0x3<<62) | 0x2<<62
	s := hexDigits(buf[:0], a>>32, 8, digitsOf)
	s = append(s, '-')
	s = hexDigits(s, a>>16, 4, digitsOf)
	s = append(s, '-')
	s = hexDigits(s, a, 4, digitsOf)
	s = append(s, '-')
	s = hexDigits(s, b>>48, 4, digitsOf)
	s = append(s, '-')
	s = hexDigits(s, b, 12, digitsOf)
	return string(s)
}

// hexDigits appends the low n hex digits of x to dst, most significant first.
func hexDigits(dst []byte, x uint64, n int, digits string) []byte {
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, digits[(x>>(4*uint(i)))&0xf])
	}
	return dst
}

// Error codes from the carrier SDK documentation (seeds/getui-one-tap-login-ios.txt,
// seeds/jiguang-loginTokenVerify-with-risk.txt) and SIGNALS.md. serverSide marks codes returned
// when a loginToken was obtained and then verified: those attempts carry a token digest; the others
// fail on the device before any token exists.
var (
	// Ordinary failures of a gateway attempt, by carrier: no cellular data, pre-login failed,
	// gateway timeout, Wi-Fi instead of cellular, the verify call could not get the number.
	benignGatewayFails = [numCarriers][]string{
		cm: {"-40101", "-40102", "103111", "200023", "200027", "102102", "8001"},
		cu: {"-40201", "-40204", "3005", "3010", "200023", "200027", "8001"},
		ct: {"-40301", "-40302", "-10001", "-8003", "200023", "200027", "8001"},
	}
	// SMS fallback failures: wrong code, code timed out.
	smsFails = []string{"103108", "103109"}
	// A token used again: cache expired, token expired (CU), invalid accessCode, get phone fail,
	// request expired.
	replayFails = []string{"103203", "201", "-20204", "8001", "1001"}
	// Rate limits hit by hammering: too many token requests (103911), verify interval / daily limit
	// (9005 / 9006), daily quota (105021), CT API rate limit (-65) and preset threshold (-10008),
	// CU app quota exhausted (104).
	hammerFails = [numCarriers][]string{
		cm: {"103911", "103911", "103911", "9005", "9006", "105021"},
		cu: {"103911", "103911", "9005", "9006", "104"},
		ct: {"103911", "103911", "9005", "9006", "-65", "-10008"},
	}
	// Gateway attempts from a datacenter: gateway IP rejected, IP not allowed, source IP
	// authentication failed, no cellular data.
	datacenterFails = []string{"103111", "-10004", "3011", "200027"}
	// Gateway attempts through an overseas proxy: no cellular network, carrier not supported,
	// Wi-Fi cannot get the number, IP not allowed.
	overseasFails = []string{"-20202", "-20203", "3005", "-10004"}

	serverSide = map[string]bool{
		"8001": true, "103203": true, "201": true, "-20204": true, "1001": true,
		"9005": true, "9006": true, "103111": true, "-10004": true, "3011": true,
	}
)

// A user of the benign population, derived from (seed, index) each time it is needed.
type user struct {
	carrier int
	phone   string
	app     string
	devices [2]device
	ndev    int
	home    netip.Addr
	alt     netip.Addr // another address of the same /24 (/64): the NAT handed out a neighbour
	natPool int        // NAT addresses of the carrier's pool the user's logins use
	// Mobility (mobility.go): how the address changes between logins.
	move      int
	broadband netip.Addr // moveWifi: the home broadband address
	v6Changes bool       // an IPv6 user whose /64 changes at each login
	fixed     netip.Addr // a traveller's address for the next login (flight)
}

type device struct{ id, platform string }
