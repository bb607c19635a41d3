package geo

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// ClassFingerprint identifies the data that classifies addresses — the ASN data (the CSV table's
// ranges, or the ASN database's type and build), the datacenter list, the cloud and the mobile
// lists — as 16 hex digits: the same data gives the same fingerprint in every process. Network
// keys depend on an address's class (a mobile pool's /16, a datacenter's IPv6 /48), so a
// feature snapshot written under other classification data is refused (pipeline.Snapshots)
// rather than loaded next to keys derived differently. The city database is left out: it gives
// locations, which a snapshot keeps as they were.
func (l *Locator) ClassFingerprint() string {
	if l == nil {
		return "none"
	}
	h := xxhash.New()
	var b []byte
	word := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	flush := func(tag string) {
		h.WriteString(tag)
		h.Write(b)
		b = b[:0]
	}
	if t := l.asnTable; t != nil {
		for _, s := range t.v4 {
			word(uint64(s.lo)<<32 | uint64(s.hi))
			word(uint64(s.v.asn))
		}
		flush("asn4")
		for _, s := range t.v6 {
			word(s.lo.hi)
			word(s.lo.lo)
			word(s.hi.hi)
			word(s.hi.lo)
			word(uint64(s.v.asn))
		}
		flush("asn6")
	} else if l.asn != nil {
		fmt.Fprintf(h, "asnmmdb %s %d %d", l.asnInfo.Type, l.asnInfo.BuildTime.Unix(), l.asn.Metadata.NodeCount)
	}
	set := func(tag string, c *CIDRSet) {
		if c == nil || c.t == nil {
			flush(tag + " none")
			return
		}
		for _, s := range c.t.v4 {
			word(uint64(s.lo)<<32 | uint64(s.hi))
		}
		for _, s := range c.t.v6 {
			word(s.lo.hi)
			word(s.lo.lo)
			word(s.hi.hi)
			word(s.hi.lo)
		}
		flush(tag)
	}
	list := func(tag string, n *NetList) {
		if n == nil {
			flush(tag + " none")
			return
		}
		for _, a := range n.asns {
			word(uint64(a))
		}
		flush(tag + " asns")
		set(tag+" networks", n.cidrs)
	}
	set("idc", l.idc)
	list("cloud", l.cloud)
	list("mobile", l.mobile)
	return fmt.Sprintf("%016x", h.Sum64())
}
