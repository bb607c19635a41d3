package scoring_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

func TestParseListsErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings of the error
	}{
		{"too few fields", "block phone 13800138000\n\n# comment\nallow phone\n", []string{"line 4:", "got 2 fields"}},
		{"too many fields", "block phone 13800138000 13900139000", []string{"line 1:", "got 4 fields"}},
		{"action", "allow ip 10.0.0.1\ndeny phone 13800138000", []string{"line 2:", `"deny"`, "allow or block"}},
		{"kind", "block email a@example.com", []string{"line 1:", `"email"`}},
		{"phone", "block phone 12345", []string{"line 1:", "phone:", "5 digits"}}, // the value itself is never echoed
		{"prefix length", "block prefix 138001", []string{"line 1:", `"138001"`, "7 digits"}},
		{"prefix digits", "block prefix 13800a1", []string{"line 1:", "7 digits"}},
		{"prefix first digit", "block prefix 2380013", []string{"line 1:", "starting with 1"}},
		{"cidr", "block ip 10.0.0.0/8\nblock ip 10.0.0.0/33", []string{"line 2:", "CIDR"}},
		{"ip", "block ip 10.0.0.300", []string{"line 1:", "10.0.0.300"}},
		{"ip zone", "block ip fe80::1%eth0", []string{"line 1:"}},
		// A typo must not widen a block silently: host bits are refused, with the fix suggested.
		{"phone_hash", "block phone_hash abc", []string{"line 1:", "64 hex digits"}},
		{"host bits", "block ip 192.0.2.77/24", []string{"line 1:", "host bits", "192.0.2.0/24"}},
		// Events may not carry such a device id, so the entry could never match; and the file's
		// entries are shown in the console.
		{"device with a number", "block device 5f1c9a\nblock device 13800138009", []string{"line 2:", "device: looks like it contains a mobile phone number", "kind phone"}},
		// A whole number where a block, a kind or an action goes: shown masked (the error is
		// logged), never as typed.
		{"prefix holding a number", "block prefix 13912348765", []string{"line 1:", `"<phone>"`, "7 digits"}},
		{"kind holding a number", "block 13912348765 x", []string{"line 1:", `kind "<phone>"`}},
		{"action holding a number", "13912348765 phone 13912348765", []string{"line 1:", `action "<phone>"`}},
		// A line too long to read is named (it said "bufio.Scanner: token too long").
		{"long line", "block ip 10.0.0.1\nblock device " + strings.Repeat("x", 70000) + "\n", []string{"line 2: longer than 65536 bytes"}},
	}
	for _, tc := range tests {
		l, err := scoring.ParseLists(strings.NewReader(tc.in))
		if err == nil {
			t.Errorf("%s: no error, lists %v", tc.name, l)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "12348765") {
			t.Errorf("%s: error %q shows the number", tc.name, err)
		}
	}
}

func TestParseListsLen(t *testing.T) {
	l, err := scoring.ParseLists(strings.NewReader(`
# risk team lists
block phone  13800138000   # a farm number
allow phone  +8613900139000
block ip     198.51.100.0/24
allow ip     203.0.113.7
block device 5f1c9a
block prefix 1700123

`))
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 6 {
		t.Errorf("Len = %d, want 6", l.Len())
	}
	var none *scoring.Lists
	if none.Len() != 0 {
		t.Error("nil Lists Len != 0")
	}
}

var listedVars = []string{"phone_listed", "ip_listed", "device_listed", "prefix_listed"}

// listed scores one attempt against lists and returns the four *_listed values, phone first.
func listed(t *testing.T, lists, phone, ip, device string) [4]string {
	t.Helper()
	l, err := scoring.ParseLists(strings.NewReader(lists))
	if err != nil {
		t.Fatalf("ParseLists: %v", err)
	}
	s := newScorer(t, scoring.Config{}, probePack(listedVars...), scoring.WithLists(l))
	ev := event("l-1", t0, phone, ip)
	ev.DeviceID = device
	p := probes(process(t, s, ev).Hits)
	return [4]string{p["phone_listed"], p["ip_listed"], p["device_listed"], p["prefix_listed"]}
}

func TestListLookups(t *testing.T) {
	const cidrs = `
block ip 10.0.0.0/8
allow ip 10.1.0.0/16
block ip 10.1.2.0/24
allow ip 10.1.2.3
block ip 2001:db8::/32
allow ip 2001:db8:1::/48
block ip 2001:db8:1:2::7
`
	tests := []struct {
		name, lists, phone, ip, device string
		want                           [4]string
	}{
		{"nothing listed", "block phone 13900139000", "13800138000", "198.51.100.1", "", [4]string{}},
		{"phone", "block phone 13800138000", "13800138000", "198.51.100.1", "", [4]string{"block", "", "", ""}},
		{"phone written with +86", "allow phone +8613800138000", "13800138000", "198.51.100.1", "", [4]string{"allow", "", "", ""}},
		{"block beats allow", "block phone 13800138000\nallow phone 13800138000", "13800138000", "198.51.100.1", "", [4]string{"block", "", "", ""}},
		{"block beats allow, allow first", "allow phone 13800138000\nblock phone 13800138000", "13800138000", "198.51.100.1", "", [4]string{"block", "", "", ""}},
		{"block beats allow, devices", "allow device dev-9\nblock device dev-9", "13800138000", "198.51.100.1", "dev-9", [4]string{"", "", "block", ""}},
		{"block beats allow, same CIDR", "allow ip 10.0.0.0/8\nblock ip 10.0.0.0/8", "13800138000", "10.9.9.9", "", [4]string{"", "block", "", ""}},
		{"device", "allow device dev-9", "13800138000", "198.51.100.1", "dev-9", [4]string{"", "", "allow", ""}},
		{"device absent", "block device dev-9", "13800138000", "198.51.100.1", "", [4]string{}},
		{"prefix", "block prefix 1380013", "13800138000", "198.51.100.1", "", [4]string{"", "", "", "block"}},
		{"other prefix", "block prefix 1380014", "13800138000", "198.51.100.1", "", [4]string{}},
		{"exact IP", "block ip 198.51.100.1", "13800138000", "198.51.100.1", "", [4]string{"", "block", "", ""}},
		{"CIDR /8", cidrs, "13800138000", "10.200.0.1", "", [4]string{"", "block", "", ""}},
		{"CIDR /16 inside /8", cidrs, "13800138000", "10.1.200.1", "", [4]string{"", "allow", "", ""}},
		{"CIDR /24 inside /16", cidrs, "13800138000", "10.1.2.4", "", [4]string{"", "block", "", ""}},
		{"address inside /24", cidrs, "13800138000", "10.1.2.3", "", [4]string{"", "allow", "", ""}},
		{"outside every range", cidrs, "13800138000", "11.0.0.1", "", [4]string{}},
		{"IPv6 /32", cidrs, "13800138000", "2001:db8:ffff::1", "", [4]string{"", "block", "", ""}},
		{"IPv6 /48 inside /32", cidrs, "13800138000", "2001:db8:1:9::1", "", [4]string{"", "allow", "", ""}},
		{"IPv6 address inside /48", cidrs, "13800138000", "2001:db8:1:2::7", "", [4]string{"", "block", "", ""}},
		{"IPv6 outside", cidrs, "13800138000", "2001:db9::1", "", [4]string{}},
		{"IPv4-mapped CIDR is the IPv4 range", "block ip ::ffff:192.0.2.0/120", "13800138000", "192.0.2.1", "", [4]string{"", "block", "", ""}},
		{"IPv4 /0", "block ip 0.0.0.0/0", "13800138000", "192.0.2.1", "", [4]string{"", "block", "", ""}},
		{"IPv4 /0 leaves IPv6 alone", "block ip 0.0.0.0/0", "13800138000", "2001:db8::1", "", [4]string{}},
		{"IPv6 ::/0 leaves IPv4 alone", "block ip ::/0", "13800138000", "192.0.2.1", "", [4]string{}},
		{"IPv6 ::/0", "block ip ::/0", "13800138000", "2001:db8::1", "", [4]string{"", "block", "", ""}},
		{"IPv4-mapped CIDR", "block ip ::ffff:192.0.2.0/120", "13800138000", "192.0.2.1", "", [4]string{"", "block", "", ""}},
		{"IPv4-mapped address", "block ip ::ffff:192.0.2.1", "13800138000", "192.0.2.1", "", [4]string{"", "block", "", ""}},
		{"hashed phone", "block phone_hash " + schemas.NewPhoneHasher(testKey).Hex("13800138000"), "13800138000", "198.51.100.1", "", [4]string{"block", "", "", ""}},
		{"hashed phone, other number", "block phone_hash " + schemas.NewPhoneHasher(testKey).Hex("13900139000"), "13800138000", "198.51.100.1", "", [4]string{}},
		{"hashed phone, other key", "block phone_hash " + schemas.NewPhoneHasher([]byte("other")).Hex("13800138000"), "13800138000", "198.51.100.1", "", [4]string{}},
		{"hashed block beats plain allow", "allow phone 13800138000\nblock phone_hash " + schemas.NewPhoneHasher(testKey).Hex("13800138000"), "13800138000", "198.51.100.1", "", [4]string{"block", "", "", ""}},
		{"plain block beats hashed allow", "block phone 13800138000\nallow phone_hash " + schemas.NewPhoneHasher(testKey).Hex("13800138000"), "13800138000", "198.51.100.1", "", [4]string{"block", "", "", ""}},
		{"everything", "block phone 13800138000\nallow ip 192.0.2.0/24\nblock device d\nallow prefix 1380013", "13800138000", "192.0.2.1", "d", [4]string{"block", "allow", "block", "allow"}},
	}
	for _, tc := range tests {
		if got := listed(t, tc.lists, tc.phone, tc.ip, tc.device); got != tc.want {
			t.Errorf("%s: listed %q, want %q", tc.name, got, tc.want)
		}
	}
}

// block_listed and allow_listed name what of the attempt is on each list, for the default pack's
// reasons ("on the block list: number, device" — not "phone: block, ip: , device: block, prefix: "),
// naming the listed network or address and the number block (it said "ip" and "prefix").
func TestListedKindsForReasons(t *testing.T) {
	l, err := scoring.ParseLists(strings.NewReader("block phone 13800138000\nallow ip 192.0.2.0/24\nblock device d\nallow prefix 1380013\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newScorer(t, scoring.Config{}, probePack("block_listed", "allow_listed"), scoring.WithLists(l))
	ev := event("lk-1", t0, "13800138000", "192.0.2.1")
	ev.DeviceID = "d"
	p := probes(process(t, s, ev).Hits)
	if p["block_listed"] != "number, device" || p["allow_listed"] != "network 192.0.2.0/24, number block 1380013" {
		t.Errorf("block_listed %q, allow_listed %q; want \"number, device\" and \"network 192.0.2.0/24, number block 1380013\"", p["block_listed"], p["allow_listed"])
	}
	ev = event("lk-2", t0, "13900139000", "198.51.100.1")
	if p := probes(process(t, s, ev).Hits); p["block_listed"] != "" || p["allow_listed"] != "" {
		t.Errorf("nothing listed: block_listed %q, allow_listed %q", p["block_listed"], p["allow_listed"])
	}
}

func TestBlocklistRuleAndSetLists(t *testing.T) {
	now := t0
	s := newScorer(t, scoring.Config{}, withProbes(nil, listedVars...), scoring.WithClock(func() time.Time { return now }))
	ev := event("bl-1", t0, "13800138000", "198.51.100.1")
	if rec := process(t, s, ev); rec.Score != 0 {
		t.Fatalf("without lists: score %d", rec.Score)
	}
	l, err := scoring.ParseLists(strings.NewReader("block ip 198.51.100.0/24\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.SetLists(l)
	ev.EventID = "bl-2"
	rec := process(t, s, ev)
	if rec.Score != 900 || rec.Tags[0] != "blocklist" ||
		rec.Detail["blocklist"].Reason != "on the block list: network 198.51.100.0/24" {
		t.Errorf("blocked IP: %d %v %+v", rec.Score, rec.Tags, rec.Detail)
	}
	rc, err := s.Check(&schemas.CheckRequest{Phone: "13900139000", IP: ev.IP, AppID: "a"})
	if err != nil || rc.Score != 900 {
		t.Errorf("Check of a blocked IP: %d, %v", rc.Score, err)
	}
	s.SetLists(nil)
	ev = event("bl-3", t0, "13700137000", "198.51.100.1")
	if rec := process(t, s, ev); rec.Score != 0 || probes(rec.Hits)["ip_listed"] != "" {
		t.Errorf("after SetLists(nil): score %d, %v", rec.Score, probes(rec.Hits))
	}
}

func TestLoadLists(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "lists.txt")
	if err := os.WriteFile(good, []byte("block phone 13800138000\nallow ip 10.0.0.0/8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := scoring.LoadLists(good)
	if err != nil || l.Len() != 2 {
		t.Fatalf("LoadLists: %v, %d entries", err, l.Len())
	}
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("block phone 13800138000\nblock ip nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = scoring.LoadLists(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 2:") {
		t.Errorf("bad file: %v, want the path and line 2", err)
	}
	_, err = scoring.LoadLists(filepath.Join(dir, "missing.txt"))
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: %v", err)
	}
}

func ExampleParseLists() {
	l, err := scoring.ParseLists(strings.NewReader(`
block phone 13800138000   # a known farm number
block ip    198.51.100.0/24
allow ip    198.51.100.7  # the office NAT inside that range: the most specific entry decides
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Len(), "entries")
	_, err = scoring.ParseLists(strings.NewReader("block ip 198.51.100.0/24\nblock ipv4 10.0.0.1\n"))
	fmt.Println(err)
	// Output:
	// 3 entries
	// line 2: kind "ipv4" is not phone, phone_hash, ip, device or prefix
}

// A phone_hash value longer than 64 hex digits is refused with the line named; hex.Decode into
// the 32-byte key panicked on it (found by FuzzParseLists).
func TestParseListsLongPhoneHash(t *testing.T) {
	for _, value := range []string{strings.Repeat("0", 66), strings.Repeat("ab", 40), strings.Repeat("0", 65), strings.Repeat("0", 63)} {
		_, err := scoring.ParseLists(strings.NewReader("allow ip 1.2.3.4\nblock phone_hash " + value + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2: phone_hash is not 64 hex digits") {
			t.Errorf("%d digits: %v", len(value), err)
		}
	}
}

// A network with host bits set is refused with the network meant; an IPv6 one whose groups read
// as a phone number shows masked, as the value does (found by FuzzParseLists).
func TestParseListsHostBitsSuggestionMasked(t *testing.T) {
	_, err := scoring.ParseLists(strings.NewReader("block ip 1381:2345:678::1/48\n"))
	if err == nil || !strings.Contains(err.Error(), "host bits set") || schemas.MaskPhones(err.Error()) != err.Error() {
		t.Errorf("err %v", err)
	}
	_, err = scoring.ParseLists(strings.NewReader("block ip 10.1.2.3/8\n"))
	if err == nil || !strings.Contains(err.Error(), "did you mean 10.0.0.0/8?") {
		t.Errorf("err %v", err)
	}
}
