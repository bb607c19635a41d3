package geo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"64:ff9b::47.92.100.1":   "47.92.100.1", // NAT64 well-known prefix (RFC 6052)
		"64:ff9b::2f5c:6401":     "47.92.100.1",
		"::ffff:47.92.100.1":     "47.92.100.1", // IPv4-mapped
		"::ffff:0:47.92.100.1":   "47.92.100.1", // IPv4-translated (SIIT)
		"::47.92.100.1":          "47.92.100.1", // IPv4-compatible
		"47.92.100.1":            "47.92.100.1",
		"::":                     "::",
		"::1":                    "::1",
		"64:ff9b:1::2f5c:6401":   "64:ff9b:1::2f5c:6401", // local-use prefix: network-specific, not read
		"64:ff9b::1:2f5c:6401":   "64:ff9b::1:2f5c:6401", // outside the /96
		"2409:8900::47.92.100.1": "2409:8900::2f5c:6401",
		"::1:0:0:2f5c:6401":      "::1:0:0:2f5c:6401",
		// 6to4 (RFC 3056): the site of the IPv4 address in bits 16–47, whatever its subnet and host
		"2002:2f5c:6401::1":                       "47.92.100.1",
		"2002:2f5c:6401:7b3a:1c2d:3e4f:5a6b:7c8d": "47.92.100.1",
		// Teredo (RFC 4380): server 65.54.227.120, the client's external address inverted in the last 32 bits
		"2001:0:4136:e378:8000:63bf:d0a3:9bfe": "47.92.100.1",
		"2001:1::1":                            "2001:1::1", // not Teredo (2001:0::/32 only)
		"2003::2f5c:6401":                      "2003::2f5c:6401",
	} {
		if got := ClientAddr(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("ClientAddr(%s) = %s, want %s", in, got, want)
		}
	}
	if got := ClientAddr(netip.Addr{}); got.IsValid() {
		t.Errorf("ClientAddr of the zero Addr = %s", got)
	}
}

// TestLookupOfNAT64Address: a datacenter address seen through a NAT64/SIIT translator is located
// and classified as the IPv4 address.
func TestLookupOfNAT64Address(t *testing.T) {
	loc, err := Open("", "", WithIDCList(DefaultIDCList()))
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"47.92.100.1", "64:ff9b::47.92.100.1", "::47.92.100.1", "2002:2f5c:6401:9::1", "2001:0:4136:e378:8000:63bf:d0a3:9bfe"} {
		if got := loc.Lookup(netip.MustParseAddr(ip)).IPType; got != IPTypeIDC {
			t.Errorf("%s: ip type %q, want %q", ip, got, IPTypeIDC)
		}
	}
}

// TestLookupOfTunnelAddressesIsTheIPv4Host: the ASN data answers 2002::/16 (6to4) and 2001::/32
// (Teredo) with the relays' AS, Hurricane Electric; the address of a host behind either tunnel is
// attributed to the IPv4 network it embeds — a cloud host's 6to4 address is the cloud's, a
// cellular user's Teredo address the carrier's.
func TestLookupOfTunnelAddressesIsTheIPv4Host(t *testing.T) {
	tab, err := LoadASNCSV(strings.NewReader("47.92.0.0,47.95.255.255,37963,\"Hangzhou Alibaba Advertising Co.,Ltd.\"\n" +
		"223.104.0.0,223.107.255.255,9808,China Mobile Communications Group Co. Ltd.\n" +
		"2001::,2001::ffff:ffff:ffff:ffff:ffff:ffff,6939,Hurricane Electric LLC\n" +
		"2002::,2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff,6939,Hurricane Electric LLC\n"))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := Open("", "", WithCloudList(DefaultCloudList()), WithMobileList(DefaultMobileList()), WithASNTable(tab))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip     string
		asn    uint32
		ipType string
	}{
		{"2002:2f5c:6401:1::1", 37963, IPTypeIDC},                    // 6to4 of 47.92.100.1
		{"2002:df68:311:ab::9", 9808, IPTypeMobile},                  // 6to4 of 223.104.3.17
		{"2001:0:4136:e378:8000:63bf:d0a3:9bfe", 37963, IPTypeIDC},   // Teredo, client 47.92.100.1
		{"2001:0:4136:e378:8000:63bf:2097:fcee", 9808, IPTypeMobile}, // Teredo, client 223.104.3.17
		{"2001:470::1", 0, ""},                                       // an ordinary IPv6 address of 2001::/16
	} {
		g := loc.Lookup(netip.MustParseAddr(c.ip))
		if g.ASN != c.asn || g.IPType != c.ipType {
			t.Errorf("%s: AS%d, ip type %q; want AS%d, %q", c.ip, g.ASN, g.IPType, c.asn, c.ipType)
		}
	}
}

func TestClientPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"2002:2f5c:6401::/48":                      "47.92.100.1/32",
		"2002:2f5c:6401:5::/64":                    "47.92.100.1/32",
		"2002:2f5c::/32":                           "47.92.0.0/16",
		"2002::/16":                                "2002::/16",
		"64:ff9b::2f5c:6400/120":                   "47.92.100.0/24",
		"64:ff9b::/96":                             "64:ff9b::/96",
		"::ffff:47.92.100.0/120":                   "47.92.100.0/24",
		"::ffff:0:0/96":                            "0.0.0.0/0",
		"2001:0:4136:e378:8000:63bf:d0a3:9b00/120": "47.92.100.0/24", // Teredo: the clients' addresses, inverted
		"2001::/32":                                "2001::/32",
		"2409:8934::/32":                           "2409:8934::/32",
		"47.92.0.0/14":                             "47.92.0.0/14",
	} {
		if got := ClientPrefix(netip.MustParsePrefix(in)); got != netip.MustParsePrefix(want) {
			t.Errorf("ClientPrefix(%s) = %s, want %s", in, got, want)
		}
		if got, err := ParseNetwork(in); err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("ParseNetwork(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

// IsPrivate: RFC 1918, 100.64.0.0/10 and fc00::/7, in any form that embeds them; public,
// documentation and link-local addresses are not.
func TestIsPrivate(t *testing.T) {
	for s, want := range map[string]bool{
		"10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true, "100.64.7.9": true, "100.127.255.255": true,
		"fd12:3456:789a:1::10": true, "fc00::1": true, "::ffff:10.20.30.40": true, "64:ff9b::192.168.1.1": true,
		"100.128.0.1": false, "172.32.0.1": false, "223.104.3.17": false, "240e:3a1:4c2:7b10::1": false,
		"2409:8a28:77:7b10::1": false, "2001:db8::1": false, "203.0.113.10": false, "fe80::1": false,
	} {
		if got := IsPrivate(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPrivate(%s) = %v, want %v", s, got, want)
		}
	}
}
