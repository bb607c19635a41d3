package geo

import (
	"net/netip"
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
	for _, ip := range []string{"47.92.100.1", "64:ff9b::47.92.100.1", "::47.92.100.1"} {
		if got := loc.Lookup(netip.MustParseAddr(ip)).IPType; got != IPTypeIDC {
			t.Errorf("%s: ip type %q, want %q", ip, got, IPTypeIDC)
		}
	}
}
