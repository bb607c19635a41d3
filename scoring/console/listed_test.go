package console

import "testing"

// TestListedForIPv6ShowsItsSlash64Entry: the scorer matches a listed IPv6 address for any address
// of its /64, so investigating another address of that /64 shows the entry that decides it.
func TestListedForIPv6ShowsItsSlash64Entry(t *testing.T) {
	es := []ListEntry{
		{ID: "1", Action: "block", Kind: KindIP, Value: "240e:3a1:1234:5600::9"},
		{ID: "2", Action: "block", Kind: KindIP, Value: "240e:3a1:1234:5601::9"},
		{ID: "3", Action: "block", Kind: KindIP, Value: "203.0.113.9"},
	}
	got := listedFor(es, Lookup{Kind: KindIP, Value: "240e:3a1:1234:5600:a4f1:9c2e:77d0:1b3"})
	if len(got) != 1 || got[0].ID != "1" {
		t.Errorf("entries shown for another address of a listed IPv6 address's /64: %+v, want entry 1", got)
	}
	if got := listedFor(es, Lookup{Kind: KindIP, Value: "203.0.113.10"}); len(got) != 0 {
		t.Errorf("entries shown for the IPv4 address next to a listed one: %+v, want none", got)
	}
}
