package geo

import (
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// NetList is a set of networks given by autonomous system number, by CIDR, or both: the mobile
// carrier networks (mobile_networks.txt) and the cloud ASNs of the datacenter classification
// (cloud_asns.txt). An address matches when its AS (from the ASN data) or the address itself is in
// the set; AS entries therefore need the ASN data, CIDR entries do not. A nil *NetList is empty.
// It is immutable and safe for concurrent use.
type NetList struct {
	asns  []uint32 // sorted, distinct
	cidrs *CIDRSet
}

// LoadNetList reads a network list: one entry per line, either an AS number written `AS9808`
// (or `as9808`) or a network as in the datacenter CIDR list (see LoadCIDRList: CIDR without host
// bits, or a bare address), optionally followed by whitespace and a free-text label. '#' starts a
// comment. Errors name the line.
func LoadNetList(r io.Reader) (*NetList, error) {
	l := &NetList{}
	b := NewCIDRTableBuilder[struct{}](nil)
	entries := 0
	err := eachListEntry(r, "network list", func(f string) error {
		if len(f) > 2 && strings.EqualFold(f[:2], "AS") {
			n, err := strconv.ParseUint(f[2:], 10, 32)
			if err != nil || n == 0 {
				return fmt.Errorf("%q is not an AS number (AS1 to AS4294967295)", f)
			}
			l.asns = append(l.asns, uint32(n))
			return nil
		}
		p, err := ParseNetwork(f)
		if err != nil {
			return err
		}
		b.Add(p, struct{}{})
		entries++
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.cidrs = &CIDRSet{t: b.Build(), entries: entries}
	slices.Sort(l.asns)
	l.asns = slices.Compact(l.asns)
	return l, nil
}

// LoadNetFile is LoadNetList on a file; errors name the file and the line.
func LoadNetFile(path string) (*NetList, error) { return loadFile(path, LoadNetList) }

// Match reports whether the address, or its AS number asn (0: unknown), is in the list.
func (l *NetList) Match(ip netip.Addr, asn uint32) bool {
	if l == nil {
		return false
	}
	if asn != 0 {
		if _, ok := slices.BinarySearch(l.asns, asn); ok {
			return true
		}
	}
	return l.cidrs.Contains(ip)
}

// ASNs returns the AS numbers of the list, sorted.
func (l *NetList) ASNs() []uint32 {
	if l == nil {
		return nil
	}
	return slices.Clone(l.asns)
}

// Networks returns the number of CIDR entries of the list.
func (l *NetList) Networks() int {
	if l == nil {
		return 0
	}
	return l.cidrs.Len()
}

//go:embed mobile_networks.txt
var defaultMobileList string

//go:embed cloud_asns.txt
var defaultCloudList string

var (
	defaultMobile = sync.OnceValue(func() *NetList { return mustNetList("mobile_networks.txt", defaultMobileList) })
	defaultCloud  = sync.OnceValue(func() *NetList { return mustNetList("cloud_asns.txt", defaultCloudList) })
)

func mustNetList(name, text string) *NetList {
	l, err := LoadNetList(strings.NewReader(text))
	if err != nil {
		panic("geo: embedded " + name + " is invalid: " + err.Error())
	}
	return l
}

// DefaultMobileList returns the mobile carrier networks shipped in mobile_networks.txt: China
// Mobile's autonomous systems and the cellular pools of the three carriers that are known to
// geolocate poorly. Addresses in it get IPType "mobile" and a low-confidence location.
func DefaultMobileList() *NetList { return defaultMobile() }

// DefaultCloudList returns the cloud and hosting autonomous systems shipped in cloud_asns.txt;
// with ASN data their addresses get IPType "idc" alongside the datacenter CIDR list.
func DefaultCloudList() *NetList { return defaultCloud() }
