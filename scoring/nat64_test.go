package scoring_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

// TestNAT64ClientsAreTheirIPv4Address: a verify service behind a stateless IPv4/IPv6 translator
// (SIIT-DC: an IPv6-only front end) sees every IPv4 client as 64:ff9b::a.b.c.d. Each is the IPv4
// address it embeds: ordinary users of many addresses are not one crowd, a farm on a datacenter
// address is a datacenter farm, and a block-listed address is blocked.
func TestNAT64ClientsAreTheirIPv4Address(t *testing.T) {
	loc, err := geo.Open("", "", geo.WithIDCList(geo.DefaultIDCList()), geo.WithMobileList(geo.DefaultMobileList()))
	if err != nil {
		t.Fatal(err)
	}
	lists, err := scoring.ParseLists(strings.NewReader("block ip 58.33.10.22\nblock ip 64:ff9b::58.33.10.23\n"))
	if err != nil {
		t.Fatal(err)
	}

	// Thirty users on thirty carrier NAT addresses, through the translator.
	s := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(loc), scoring.WithLists(lists))
	for i := range 30 {
		ev := event(fmt.Sprintf("u%d", i), t0.Add(time.Duration(i)*10*time.Second), fmt.Sprintf("138%08d", 10007*i+13), fmt.Sprintf("64:ff9b::223.104.%d.%d", i, 7+i))
		ev.DeviceID = fmt.Sprintf("phone-%d", i)
		rec, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Score != 0 {
			t.Fatalf("user %d of 30 on their own address: score %d %v, want 0 (every IPv4 client counted as one address)", i, rec.Score, rec.Tags)
		}
	}

	// A farm on one datacenter address, through the translator.
	var last int
	for i := range 12 {
		ev := event(fmt.Sprintf("f%d", i), t0.Add(time.Duration(i)*10*time.Second), fmt.Sprintf("139%08d", 7919*i+1), "64:ff9b::"+geotest.DatacenterIP)
		ev.DeviceID = fmt.Sprintf("emu-%d", i)
		rec, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if !hits(rec)["idc_proxy_ip"] {
			t.Fatalf("farm attempt %d from 64:ff9b::%s: %v, want idc_proxy_ip", i, geotest.DatacenterIP, rec.Tags)
		}
		last = rec.Score
	}
	if last != 900 {
		t.Errorf("the 12th number from one datacenter address through the translator: score %d, want 900", last)
	}

	ev := event("b1", t0.Add(time.Hour), "13712345678", "64:ff9b::58.33.10.22")
	rec, err := s.Process(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Score != 900 || !hits(rec)["blocklist"] {
		t.Errorf("block-listed 58.33.10.22 through the translator: score %d %v, want 900 blocklist", rec.Score, rec.Tags)
	}
	// Listed as the translator wrote it (copied from an event), it is the IPv4 address too.
	ev = event("b2", t0.Add(time.Hour), "13712345679", "58.33.10.23")
	if rec, err = s.Process(&ev); err != nil {
		t.Fatal(err)
	}
	if rec.Score != 900 || rec.Detail["blocklist"].Reason != "on the block list: IP 58.33.10.23" {
		t.Errorf("58.33.10.23 listed as 64:ff9b::58.33.10.23: score %d %v, want 900 and its reason", rec.Score, rec.Detail)
	}
}

// TestTunnelClientsAreTheirIPv4Address: a farm on one cloud host reaches an IPv6 verify service
// over 6to4 (its site prefix 2002:a.b.c.d::/48 comes with the host's IPv4 address) or Teredo,
// giving each attempt a new subnet id or port: a new /64 each. It is the cloud address it embeds —
// a datacenter address crowded by every number — as the IPv4 address itself would be. As IPv6,
// sixty numbers of the 6to4 farm scored 0 (one number per /64, no datacenter, no country).
func TestTunnelClientsAreTheirIPv4Address(t *testing.T) {
	for name, ip := range map[string]func(i int) string{
		"6to4, a new subnet id per attempt": func(i int) string { return fmt.Sprintf("2002:2f5c:6401:%x::1", i+1) },
		"Teredo, a new port per attempt":    func(i int) string { return fmt.Sprintf("2001:0:4136:e378:8000:%x:d0a3:9bfe", 0xffff^(40000+i)) },
	} {
		s := newScorer(t, scoring.Config{}, withProbes(nil, "ip_phones_10m", "ip_v6"), scoring.WithGeo(listsOnly(t)))
		var last map[string]string
		var score int
		for i := range 12 {
			ev := event(fmt.Sprintf("t%d", i), t0.Add(time.Duration(i)*10*time.Second), fmt.Sprintf("139%08d", 7919*i+1), ip(i))
			ev.DeviceID = fmt.Sprintf("emu-%d", i)
			rec := process(t, s, ev)
			if !hits(rec)["idc_proxy_ip"] {
				t.Fatalf("%s: attempt %d from %s: %v, want idc_proxy_ip (%s)", name, i, ip(i), rec.Tags, geotest.DatacenterIP)
			}
			last, score = probes(rec.Hits), rec.Score
		}
		if score != 900 || last["ip_phones_10m"] != "12" || last["ip_v6"] != "false" {
			t.Errorf("%s: the 12th number: score %d, %v; want 900, 12 phones on one address, not IPv6", name, score, last)
		}
	}
}

// TestListedTunnelNetworkBlocks: a 6to4 or Teredo network on the block list blocks the attempts
// of the IPv4 hosts it names, since those attempts are read as their IPv4 addresses. Listed as
// written, "block ip 2002:2f5c:6401::/48" matched nothing and the farm behind it passed.
func TestListedTunnelNetworkBlocks(t *testing.T) {
	lists, err := scoring.ParseLists(strings.NewReader("block ip 2002:2f5c:6401::/48\nblock ip 2001:0:4136:e378:8000:63bf:d0a3:9b00/120\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newScorer(t, scoring.Config{}, nil, scoring.WithLists(lists))
	for i, ip := range []string{"2002:2f5c:6401:9::1", "47.92.100.1", "2001:0:4136:e378:8000:1234:d0a3:9bfe", "47.92.100.77"} {
		rec := process(t, s, event(fmt.Sprintf("l%d", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("139%08d", 7919*i+1), ip))
		if rec.Score != 900 || !hits(rec)["blocklist"] {
			t.Errorf("%s: score %d, tags %v; want 900 blocklist", ip, rec.Score, rec.Tags)
		}
	}
	rec := process(t, s, event("l-out", t0.Add(time.Minute), "13912345678", "2002:2f5c:6501::1"))
	if rec.Score != 0 {
		t.Errorf("2002:2f5c:6501::1 (47.92.101.1, not listed): score %d, tags %v", rec.Score, rec.Tags)
	}
}
