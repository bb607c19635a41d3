package geo

import "net/netip"

// nat64 is the well-known prefix of IPv4-embedded IPv6 addresses (RFC 6052): a translator between
// IPv4 and IPv6 writes an IPv4 host as 64:ff9b::a.b.c.d.
var nat64 = [12]byte{0x00, 0x64, 0xff, 0x9b}

// ClientAddr is the address an attempt comes from as riskflow counts, lists and locates it: an
// IPv6 address that only embeds an IPv4 address is that IPv4 address. That is an IPv4-mapped
// address (::ffff:a.b.c.d, from a dual-stack socket), an IPv4-translated one (::ffff:0:a.b.c.d,
// SIIT) or an IPv4-compatible one (::a.b.c.d), and an address of the NAT64 well-known prefix
// 64:ff9b::/96 — what a verify service behind a stateless IPv4/IPv6 translator (SIIT-DC, RFC
// 7755: an IPv6-only front end) sees of every IPv4 client. Kept as IPv6, each of these forms put
// every IPv4 client of the deployment in one /64 (one "IP" with thousands of phones: every
// ordinary user observed as a crowd) and out of reach of the datacenter, cloud and mobile lists
// and the geo databases (a farm on a cloud address passed as a household).
//
// So are the two tunnel forms whose address names the IPv4 host behind it: a 6to4 address
// (2002:a.b.c.d::/48, RFC 3056) is the site of IPv4 address a.b.c.d, and a Teredo address
// (2001:0::/32, RFC 4380) the client behind the NAT whose external address it carries, inverted,
// in its last 32 bits. Kept as IPv6, a farm on one cloud address wrote its 6to4 /48 with a new
// subnet id (a new /64) for each attempt: the ASN data answers 2002::/16 with the 6to4 relays' AS
// (Hurricane Electric), so it was neither a datacenter nor one address — sixty numbers passed
// unscored. And every Teredo client of one Teredo server shared one /64 (the server's address
// fills bits 32–63), located where the server is.
//
// A network-specific NAT64 prefix (one the operator chose) cannot be told from an ordinary IPv6
// network and is left as it is. Anything else is returned unchanged.
func ClientAddr(a netip.Addr) netip.Addr {
	if !a.Is6() {
		return a
	}
	b := a.As16()
	v4 := netip.AddrFrom4([4]byte(b[12:]))
	switch {
	case [12]byte(b[:12]) == nat64:
		return v4
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		return netip.AddrFrom4([4]byte(b[2:6]))
	case [4]byte(b[:4]) == [4]byte{0x20, 0x01, 0, 0}: // Teredo
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	if [8]byte(b[:8]) != [8]byte{} {
		return a
	}
	switch [4]byte(b[8:12]) {
	case [4]byte{0, 0, 0, 0}: // IPv4-compatible, but for :: and ::1, which embed nothing
		if b[12]|b[13]|b[14] == 0 && b[15] <= 1 {
			return a
		}
		return v4
	case [4]byte{0, 0, 0xff, 0xff}, [4]byte{0xff, 0xff, 0, 0}: // IPv4-mapped, IPv4-translated
		return v4
	}
	return a
}

// ClientPrefix is the range of client addresses (ClientAddr) a network p stands for: a network
// inside one of the forms ClientAddr reads as IPv4 is the IPv4 network its fixed bits name — a
// 6to4 2002:a.b.c.d::/48 (or any longer prefix of it) is a.b.c.d/32, 2002:2f5c::/32 is
// 47.92.0.0/16, 64:ff9b::a.b.c.0/120 and ::ffff:a.b.c.0/120 are a.b.c.0/24, a Teredo /120 the
// clients' /24 — since attempts from such addresses are matched as that IPv4 address. Listed as
// it was written, a 6to4 network on a block list matched no attempt once ClientAddr read 6to4. A
// prefix too short to fix any embedded bit (2002::/16, 64:ff9b::/96 and shorter; but
// ::ffff:0:0/96, every IPv4 address) is returned masked, as is any other network.
func ClientPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	a := p.Addr()
	if !a.Is6() {
		return p
	}
	b := a.As16()
	if b[0] == 0x20 && b[1] == 0x02 && p.Bits() > 16 { // 6to4: the IPv4 address is bits 16–47
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[2:6])), min(p.Bits()-16, 32)).Masked()
	}
	if p.Bits() > 96 || p.Bits() == 96 && a.Is4In6() { // ::ffff:0:0/96: every IPv4 address, as before
		if v4 := ClientAddr(a); v4.Is4() {
			return netip.PrefixFrom(v4, p.Bits()-96).Masked()
		}
	}
	return p
}

// cgnShared is the carrier-grade NAT range of RFC 6598: addresses between a carrier's NAT and its
// subscribers, never seen from outside the carrier.
var cgnShared = netip.MustParsePrefix("100.64.0.0/10")

// IsPrivate reports whether a client address (read as ClientAddr reads it) is of a private
// network: RFC 1918, the carrier-grade NAT range 100.64.0.0/10, or unique local fc00::/7. A verify
// service sees one only for clients on its own network or behind its own proxy, so every such
// client shares it, as no household shares its line.
func IsPrivate(a netip.Addr) bool {
	a = ClientAddr(a.Unmap())
	return a.IsPrivate() || a.Is4() && cgnShared.Contains(a)
}
