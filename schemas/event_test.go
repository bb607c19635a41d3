package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

const testDigest = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"

// eventJSON returns a minimal valid event with some members replaced or added. A value of nil
// drops the member; a json.RawMessage is written as it is.
func eventJSON(t testing.TB, changes map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"event_id": "evt-0001",
		"ts":       "2025-03-14T09:26:53Z",
		"app_id":   "app-7c41d9",
		"flow":     "one_click_login",
		"phone":    "13812348000",
		"ip":       "223.104.63.18",
		"outcome":  "success",
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var (
	tsExample = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	minEvent  = VerifyEvent{
		EventID: "evt-0001", TS: tsExample, AppID: "app-7c41d9", Flow: FlowOneClickLogin,
		Phone: "13812348000", IP: netip.MustParseAddr("223.104.63.18"), Outcome: OutcomeSuccess,
	}
)

func TestDecodeEventFull(t *testing.T) {
	data := []byte(`{
		"schema": "1.0",
		"event_id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
		"ts": 1741944413589,
		"app_id": "app-7c41d9",
		"flow": "sms_fallback",
		"phone": "+8613812348000",
		"ip": "2408:8456:3c10:1a2b::7f",
		"carrier": "CU",
		"platform": "harmony",
		"device_id": "a3f9e2c1",
		"outcome": "fail",
		"error_code": "-40101",
		"token_digest": "` + strings.ToUpper(testDigest) + `",
		"ex_id": "order-1"
	}`)
	got, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	want := VerifyEvent{
		EventID:     "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
		TS:          time.Date(2025, 3, 14, 9, 26, 53, 589e6, time.UTC),
		AppID:       "app-7c41d9",
		Flow:        FlowSMSFallback,
		Phone:       "13812348000",
		IP:          netip.MustParseAddr("2408:8456:3c10:1a2b::7f"),
		Carrier:     CarrierUnicom,
		Platform:    "harmony",
		DeviceID:    "a3f9e2c1",
		Outcome:     OutcomeFail,
		ErrorCode:   "-40101",
		TokenDigest: testDigest,
		ExID:        "order-1",
	}
	if got != want {
		t.Errorf("DecodeEvent\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeEventNormalizes(t *testing.T) {
	cases := []struct {
		name    string
		changes map[string]any
		check   func(VerifyEvent) bool
		want    string
	}{
		{"+86 stripped", map[string]any{"phone": "+8613812348000"},
			func(e VerifyEvent) bool { return e.Phone == "13812348000" }, "phone 13812348000"},
		{"86 stripped from 13 digits", map[string]any{"phone": "8618612348000"},
			func(e VerifyEvent) bool { return e.Phone == "18612348000" }, "phone 18612348000"},
		{"bare number kept", map[string]any{"phone": "19912348000"},
			func(e VerifyEvent) bool { return e.Phone == "19912348000" }, "phone 19912348000"},
		{"IoT number kept", map[string]any{"phone": "1440123456789"},
			func(e VerifyEvent) bool { return e.Phone == "1440123456789" }, "phone 1440123456789"},
		{"+86 stripped from IoT number", map[string]any{"phone": "+861440123456789"},
			func(e VerifyEvent) bool { return e.Phone == "1440123456789" }, "phone 1440123456789"},
		{"13 digits starting with 86 read as 86 + number", map[string]any{"phone": "8614012345678"},
			func(e VerifyEvent) bool { return e.Phone == "14012345678" }, "phone 14012345678"},
		{"token digest lower-cased", map[string]any{"token_digest": strings.ToUpper(testDigest)},
			func(e VerifyEvent) bool { return e.TokenDigest == testDigest }, "lower-case digest"},
		{"IPv4-mapped IPv6 unmapped", map[string]any{"ip": "::ffff:223.104.63.18"},
			func(e VerifyEvent) bool { return e.IP == netip.MustParseAddr("223.104.63.18") && e.IP.Is4() },
			"IPv4 223.104.63.18"},
		{"IPv6 kept", map[string]any{"ip": "2409:8A1E:6F:ABCD::1"},
			func(e VerifyEvent) bool { return e.IP.Is6() && e.IP.String() == "2409:8a1e:6f:abcd::1" },
			"IPv6 2409:8a1e:6f:abcd::1"},
		{"ts from unix ms", map[string]any{"ts": 1741944413000},
			func(e VerifyEvent) bool { return e.TS == tsExample }, tsExample.String()},
		{"ts from RFC 3339 with offset", map[string]any{"ts": "2025-03-14T17:26:53+08:00"},
			func(e VerifyEvent) bool { return e.TS == tsExample }, tsExample.String()},
		{"ts from RFC 3339 with lower-case t and z", map[string]any{"ts": "2025-03-14t09:26:53z"},
			func(e VerifyEvent) bool { return e.TS == tsExample }, tsExample.String()},
		{"ts keeps nanoseconds", map[string]any{"ts": "2025-03-14T04:26:53.000000001-05:00"},
			func(e VerifyEvent) bool { return e.TS == tsExample.Add(time.Nanosecond) }, "1ns past " + tsExample.String()},
		{"ts lowest", map[string]any{"ts": 946684800000},
			func(e VerifyEvent) bool { return e.TS == minTS }, minTS.String()},
		{"ts highest", map[string]any{"ts": "2100-01-01T08:00:00+08:00"},
			func(e VerifyEvent) bool { return e.TS == maxTS }, maxTS.String()},
		{"null optionals read as empty", map[string]any{"carrier": json.RawMessage("null"), "ex_id": json.RawMessage("null")},
			func(e VerifyEvent) bool { return e == minEvent }, "the minimal event"},
		{"escapes decoded", map[string]any{"ex_id": json.RawMessage(`"\u8ba2\u5355\/1"`)},
			func(e VerifyEvent) bool { return e.ExID == "订单/1" }, "ex_id 订单/1"},
		{"surrogate pair decoded", map[string]any{"ex_id": json.RawMessage(`"\ud83d\ude00!"`)},
			func(e VerifyEvent) bool { return e.ExID == "😀!" }, "ex_id 😀!"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := DecodeEvent(eventJSON(t, c.changes))
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(ev) {
				t.Errorf("got %+v, want %s", ev, c.want)
			}
			if ev.TS.Location() != time.UTC {
				t.Errorf("ts location %v, want UTC", ev.TS.Location())
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  []byte
		want string // the whole error message
	}{
		{"bad ip", eventJSON(t, map[string]any{"ip": "999.1.1.1"}), `ip: "999.1.1.1" is not an IP address`},
		{"ip with zone", eventJSON(t, map[string]any{"ip": "fe80::1%eth0"}), `ip: "fe80::1%eth0" has a zone (after %): send the address without it`},
		{"ip missing", eventJSON(t, map[string]any{"ip": nil}), `ip: is required`},
		// A verify service sending its own, its proxy's or a placeholder address: every user behind
		// one IP, flagged by every per-IP rule.
		{"ip loopback", eventJSON(t, map[string]any{"ip": "127.0.0.1"}), `ip: 127.0.0.1 is a loopback address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip loopback mapped", eventJSON(t, map[string]any{"ip": "::ffff:127.0.0.2"}), `ip: 127.0.0.2 is a loopback address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip loopback v6", eventJSON(t, map[string]any{"ip": "::1"}), `ip: ::1 is a loopback address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip unspecified", eventJSON(t, map[string]any{"ip": "0.0.0.0"}), `ip: 0.0.0.0 is the unspecified address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip unspecified v6", eventJSON(t, map[string]any{"ip": "::"}), `ip: :: is the unspecified address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip multicast", eventJSON(t, map[string]any{"ip": "224.0.0.1"}), `ip: 224.0.0.1 is a multicast address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip broadcast", eventJSON(t, map[string]any{"ip": "255.255.255.255"}), `ip: 255.255.255.255 is the broadcast address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip link-local", eventJSON(t, map[string]any{"ip": "169.254.1.1"}), `ip: 169.254.1.1 is a link-local address, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip this network", eventJSON(t, map[string]any{"ip": "0.12.34.56"}), `ip: 0.12.34.56 is in 0.0.0.0/8 (this network), never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip this network mapped", eventJSON(t, map[string]any{"ip": "::ffff:0:1"}), `ip: 0.0.0.1 is in 0.0.0.0/8 (this network), never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip reserved", eventJSON(t, map[string]any{"ip": "240.1.2.3"}), `ip: 240.1.2.3 is in 240.0.0.0/4 (reserved), never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"ip reserved mapped", eventJSON(t, map[string]any{"ip": "::ffff:feff:1"}), `ip: 254.255.0.1 is in 240.0.0.0/4 (reserved), never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)`},
		{"event_id missing", eventJSON(t, map[string]any{"event_id": nil}), `event_id: is required`},
		{"event_id too long", eventJSON(t, map[string]any{"event_id": strings.Repeat("e", 65)}), `event_id: is 65 bytes long, the limit is 64`},
		{"event_id counts bytes", eventJSON(t, map[string]any{"event_id": strings.Repeat("事", 22)}), `event_id: is 66 bytes long, the limit is 64`},
		{"app_id control character", eventJSON(t, map[string]any{"app_id": "a\x01"}), `app_id: contains a control character`},
		{"device_id DEL", eventJSON(t, map[string]any{"device_id": "d\x7f"}), `device_id: contains a control character`},
		{"error_code too long", eventJSON(t, map[string]any{"error_code": strings.Repeat("9", 33)}), `error_code: is 33 bytes long, the limit is 32`},
		{"ex_id too long", eventJSON(t, map[string]any{"ex_id": strings.Repeat("x", 129)}), `ex_id: is 129 bytes long, the limit is 128`},
		{"flow missing", eventJSON(t, map[string]any{"flow": nil}),
			`flow: is required (one of one_click_login, number_verify, h5_quick_login, sms_fallback)`},
		{"flow unknown", eventJSON(t, map[string]any{"flow": "one_tap"}),
			`flow: "one_tap" is not one of one_click_login, number_verify, h5_quick_login, sms_fallback`},
		{"outcome unknown", eventJSON(t, map[string]any{"outcome": "timeout"}), `outcome: "timeout" is not one of success, fail`},
		{"carrier unknown", eventJSON(t, map[string]any{"carrier": "cm"}), `carrier: "cm" is not one of CM, CU, CT`},
		{"platform unknown", eventJSON(t, map[string]any{"platform": "windows"}),
			`platform: "windows" is not one of android, ios, harmony, h5, web`},
		{"long enum value truncated", eventJSON(t, map[string]any{"platform": strings.Repeat("p", 50)}),
			`platform: "` + strings.Repeat("p", 40) + `…" is not one of android, ios, harmony, h5, web`},
		{"truncation keeps UTF-8 whole", eventJSON(t, map[string]any{"platform": strings.Repeat("平", 20)}),
			`platform: "` + strings.Repeat("平", 13) + `…" is not one of android, ios, harmony, h5, web`},
		{"phone not digits", eventJSON(t, map[string]any{"phone": "138-1234-8000"}),
			`phone: is not a mainland mobile number: a separator ('-', '.', '(', ')' or '+') at position 4; only ASCII digits may follow the optional +86`},
		{"phone with spaces", eventJSON(t, map[string]any{"phone": "+86 13812348000"}),
			`phone: is not a mainland mobile number: a space at position 4; only ASCII digits may follow the optional +86`},
		{"phone full-width", eventJSON(t, map[string]any{"phone": "１３８１２３４８０００"}),
			`phone: is not a mainland mobile number: a non-ASCII character (full-width digits?) at position 1; only ASCII digits may follow the optional +86`},
		{"phone wrong start", eventJSON(t, map[string]any{"phone": "23812348000"}),
			`phone: is not a mainland mobile number: after the optional +86 it must start with 1 (landlines and other countries are not accepted)`},
		{"phone 0086", eventJSON(t, map[string]any{"phone": "008613812348000"}),
			`phone: is not a mainland mobile number: it starts with the international prefix 00; write +86 or no prefix`},
		{"phone too long", eventJSON(t, map[string]any{"phone": "138123480001"}),
			`phone: is not a mainland mobile number: 12 digits after the optional +86, expected 11 (or 13 for a 14x IoT number)`},
		{"phone too short", eventJSON(t, map[string]any{"phone": "+86"}),
			`phone: is not a mainland mobile number: 0 digits after the optional +86, expected 11 (or 13 for a 14x IoT number)`},
		{"phone missing", eventJSON(t, map[string]any{"phone": nil}), `phone: is required`},
		{"phone as number", eventJSON(t, map[string]any{"phone": 13812348000}), `phone: must be a string, got number`},
		{"app_id as bool", eventJSON(t, map[string]any{"app_id": true}), `app_id: must be a string, got bool`},
		{"device_id as object", eventJSON(t, map[string]any{"device_id": map[string]any{}}), `device_id: must be a string, got object`},
		{"ts missing", eventJSON(t, map[string]any{"ts": nil}), `ts: is required`},
		{"ts null", eventJSON(t, map[string]any{"ts": json.RawMessage("null")}), `ts: is required`},
		{"ts not RFC 3339", eventJSON(t, map[string]any{"ts": "2025-03-14 09:26:53"}),
			`ts: "2025-03-14 09:26:53" is not an RFC 3339 time (2006-01-02T15:04:05Z) or unix milliseconds`},
		{"ts comma fraction", eventJSON(t, map[string]any{"ts": "2025-03-14T09:26:53,5Z"}),
			`ts: "2025-03-14T09:26:53,5Z" is not an RFC 3339 time (2006-01-02T15:04:05Z) or unix milliseconds`},
		{"ts offset +24:00", eventJSON(t, map[string]any{"ts": "2025-03-14T09:26:53+24:00"}),
			`ts: "2025-03-14T09:26:53+24:00" is not an RFC 3339 time (2006-01-02T15:04:05Z) or unix milliseconds`},
		{"ts unix seconds", eventJSON(t, map[string]any{"ts": 1741944413}),
			`ts: 1970-01-21T03:52:24.413Z is outside 2000..2100 (unix seconds sent as milliseconds?)`},
		{"ts past 2100", eventJSON(t, map[string]any{"ts": 4102444800001}),
			`ts: 2100-01-01T00:00:00.001Z is outside 2000..2100`},
		{"ts unix microseconds", eventJSON(t, map[string]any{"ts": 1741944413589000}),
			`ts: 57170-01-08T16:13:09Z is outside 2000..2100 (unix microseconds sent as milliseconds?)`},
		{"ts unix nanoseconds", eventJSON(t, map[string]any{"ts": 1741944413589000000}),
			`ts: 55201991-01-06T19:10:00Z is outside 2000..2100 (unix nanoseconds sent as milliseconds?)`},
		{"ts zero", eventJSON(t, map[string]any{"ts": 0}), `ts: 1970-01-01T00:00:00Z is outside 2000..2100`},
		// An RFC 3339 time is no unit mistake: the hint spoke of milliseconds to one who sent a date.
		{"ts before 2000 in RFC 3339", eventJSON(t, map[string]any{"ts": "1999-12-31T23:59:59Z"}),
			`ts: 1999-12-31T23:59:59Z is outside 2000..2100`},
		{"ts after 2100 in RFC 3339", eventJSON(t, map[string]any{"ts": "2100-01-01T08:00:00.5+08:00"}),
			`ts: 2100-01-01T00:00:00.5Z is outside 2000..2100`},
		{"ts float", eventJSON(t, map[string]any{"ts": 1741944413589.5}),
			`ts: 1741944413589.5 is neither an RFC 3339 string nor an integer of unix milliseconds`},
		{"ts object shown on one line", []byte(strings.Replace(string(eventJSON(t, nil)), `"2025-03-14T09:26:53Z"`, "{\"s\": 1,\n \"n\": 2}", 1)),
			`ts: {"s":1,"n":2} is neither an RFC 3339 string nor an integer of unix milliseconds`},
		{"token digest short", eventJSON(t, map[string]any{"token_digest": testDigest[:63]}),
			`token_digest: is 63 characters long: expected the 64 hex digits of a SHA-256`},
		{"token digest not hex", eventJSON(t, map[string]any{"token_digest": "g" + testDigest[1:]}),
			`token_digest: is not hexadecimal (character 0 is 'g')`},
		{"unknown field", eventJSON(t, map[string]any{"loginToken": "STsid0001"}), `loginToken: unknown field`},
		{"field name in another case", eventJSON(t, map[string]any{"PHONE": "13912348000"}), `PHONE: unknown field`},
		{"empty member name", eventJSON(t, map[string]any{"": "x"}), `unknown field ""`},
		{"unknown field with schema 1.0", eventJSON(t, map[string]any{"schema": "1.0", "x": 1}), `x: unknown field`},
		{"member given twice", []byte(`{"phone":"13812348000","phone":"13912348000"}`), `phone: appears more than once`},
		{"schema 2", eventJSON(t, map[string]any{"schema": "2.0"}), `schema: "2.0" is not a supported version: this build reads 1.x`},
		{"schema 1.+1", eventJSON(t, map[string]any{"schema": "1.+1"}), `schema: "1.+1" is not a version of the form 1.N`},
		{"schema minor too long", eventJSON(t, map[string]any{"schema": "1.00000000000"}), `schema: "1.00000000000" is not a version of the form 1.N`},
		{"schema that reads like a phone number", eventJSON(t, map[string]any{"schema": "1.3812348000"}), `schema: "<phone>" is not a version of the form 1.N`},
		{"not an object", []byte(`[{"event_id":"e"}]`), `expected a JSON object, got array`},
		{"null document", []byte(`null`), `expected a JSON object, got null`},
		{"number document", []byte(` 42 `), `expected a JSON object, got number`},
		{"trailing data", append(eventJSON(t, nil), []byte(` {}`)...), `unexpected data after the JSON object`},
		{"trailing garbage", append(eventJSON(t, nil), 'x'), `unexpected data after the JSON object`},
		{"empty", nil, `invalid JSON: unexpected end of input`},
		{"truncated", []byte(`{"event_id":"e`), `event_id: invalid JSON: unexpected end of input`},
		{"truncated after a value", []byte(`{"event_id":"e"`), `invalid JSON: unexpected end of input`},
		{"tab in a string", []byte("{\"event_id\":\"e\",\"device_id\":\"rig\t01\"}"), `device_id: invalid JSON at byte 33: invalid character '\t' in string literal`},
		{"line break in a string", []byte("{\"event_id\":\"e\",\"ex_id\":\"order\n1\"}"), `ex_id: invalid JSON at byte 31: invalid character '\n' in string literal`},
		{"bad literal", []byte(`{"event_id":"e","carrier":CM}`), `carrier: invalid JSON at byte 27: invalid character 'C' looking for beginning of value`},
		{"bad escape in an unknown member", []byte(`{"event_id":"e","colour":"\x41"}`), `colour: invalid JSON at byte 28: invalid character 'x' in string escape code`},
		{"nested value cut", []byte(`{"event_id":"e","extra":{"a":[1,}}`), `extra: invalid JSON at byte 33: invalid character '}' looking for beginning of value`},
		{"no value", []byte(`{"event_id":`), `event_id: invalid JSON: unexpected end of input`},
		// The phone's own: nothing of its text, its escapes or its offset beside its name (FuzzDecodeCheckRequest).
		{"tab in the phone", []byte("{\"event_id\":\"e\",\"phone\":\"1381234\t8000\"}"), `phone: invalid JSON: its value stops being JSON (send the number as a JSON string)`},
		{"bad byte as the phone", []byte("{\"phone\":\x83}"), `phone: invalid JSON: its value stops being JSON (send the number as a JSON string)`},
		{"missing comma", []byte(`{"event_id":"e" "ts":1}`), `invalid JSON at byte 17: invalid character '"' after object key:value pair`},
		{"syntax error", []byte(`{"event_id" "e"}`), `invalid JSON at byte 13: invalid character '"' after object key`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeEvent(c.doc)
			if err == nil {
				t.Fatalf("DecodeEvent(%s) accepted it", c.doc)
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %s\nwant %s", err, c.want)
			}
			fe, ok := AsFieldError(err)
			if !ok || fe.Reason == "" {
				t.Errorf("error %#v is not a *FieldError with a reason", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Errorf("error message is not valid UTF-8: %q", err.Error())
			}
		})
	}
}

func TestDecodeEventSchemaVersion(t *testing.T) {
	cases := []struct {
		schema  any // nil: no schema member
		unknown bool
		want    string // "" accepted, else the field the error names
	}{
		{nil, false, ""},
		{nil, true, "extra"},
		{"", true, "extra"},
		{json.RawMessage("null"), true, "extra"},
		{"1", false, ""},
		{"1", true, "extra"},
		{"1.0", false, ""},
		{"1.0", true, "extra"},
		{"1.00", true, "extra"},
		{"1.1", false, ""},
		{"1.1", true, ""},
		{"1.01", true, ""},
		{"1.27", true, ""},
		{"2.0", false, "schema"},
		{"2.0", true, "schema"},
		{"2", false, "schema"},
		{"1.", false, "schema"},
		{"1.-0", true, "schema"},
		{"v1", false, "schema"},
		{1, false, "schema"},
	}
	for _, c := range cases {
		changes := map[string]any{"schema": c.schema}
		if c.unknown {
			changes["extra"] = map[string]any{"any": []int{1, 2}}
		}
		doc := eventJSON(t, changes)
		t.Run(string(doc[:min(len(doc), 40)]), func(t *testing.T) {
			_, err := DecodeEvent(doc)
			fe, _ := AsFieldError(err)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("DecodeEvent(%s): %v, want it accepted", doc, err)
			case c.want != "" && (fe == nil || fe.Field != c.want):
				t.Errorf("DecodeEvent(%s): %v, want an error about %s", doc, err, c.want)
			}
		})
	}

	// A newer minor version relaxes unknown fields only: known ones are still checked, and a
	// differently spelled known name is just another unknown field.
	doc := eventJSON(t, map[string]any{"schema": "1.1", "extra": 1, "ip": "999.1.1.1"})
	if _, err := DecodeEvent(doc); err == nil || err.Error() != `ip: "999.1.1.1" is not an IP address` {
		t.Errorf("schema 1.1 with a bad ip: %v", err)
	}
	doc = eventJSON(t, map[string]any{"schema": "1.1", "PHONE": "13912348000"})
	if ev, err := DecodeEvent(doc); err != nil || ev.Phone != "13812348000" {
		t.Errorf("schema 1.1 with PHONE: %+v, %v; want phone 13812348000 kept", ev, err)
	}
	doc = eventJSON(t, map[string]any{"schema": "1.1", "extra": true, "phone": 13812348000})
	if _, err := DecodeEvent(doc); err == nil || err.Error() != `phone: must be a string, got number` {
		t.Errorf("schema 1.1 with a numeric phone: %v", err)
	}
}

func TestDecodeEventRoundTrip(t *testing.T) {
	events := []VerifyEvent{minEvent, {
		EventID: "e-" + strings.Repeat("x", 62), TS: time.Date(2031, 7, 1, 23, 59, 59, 999999999, time.UTC),
		AppID: "租户-1", Flow: FlowH5QuickLogin, Phone: "1440123456789", IP: netip.MustParseAddr("2001:db8::1"),
		Carrier: CarrierTelecom, Platform: "web", DeviceID: "<&>\u2028", Outcome: OutcomeFail,
		ErrorCode: "103911", TokenDigest: testDigest, ExID: `quote " and backslash \`,
	}}
	for name, data := range readExamples(t, "valid") {
		ev, err := DecodeEvent(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		events = append(events, ev)
	}
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(data)
		if err != nil {
			t.Errorf("DecodeEvent(%s): %v", data, err)
			continue
		}
		if got != ev {
			t.Errorf("round trip of %s\n got %+v\nwant %+v", data, got, ev)
		}
	}
}

func TestDecodeEvents(t *testing.T) {
	one := string(eventJSON(t, nil))
	two := string(eventJSON(t, map[string]any{"event_id": "evt-0002", "ip": "10.0.0.2"}))
	bad := string(eventJSON(t, map[string]any{"ip": "999.1.1.1"}))
	cases := []struct {
		name    string
		body    string
		wantIDs []string
		wantErr string
		field   string
	}{
		{name: "single object", body: one, wantIDs: []string{"evt-0001"}},
		{name: "single object after whitespace", body: "\n\t " + one, wantIDs: []string{"evt-0001"}},
		{name: "array", body: "[" + one + "," + two + "]", wantIDs: []string{"evt-0001", "evt-0002"}},
		{name: "array after whitespace", body: " \r\n[" + one + "]\n", wantIDs: []string{"evt-0001"}},
		{name: "empty array", body: "[]", wantErr: "the array holds no events"},
		{name: "empty body", body: "", wantErr: "body is empty: expected an event object or an array of events"},
		{name: "blank body", body: " \n ", wantErr: "body is empty: expected an event object or an array of events"},
		{name: "bad second element", body: "[" + one + "," + bad + "]", field: "[1].ip",
			wantErr: `[1].ip: "999.1.1.1" is not an IP address`},
		{name: "bad first element", body: "[" + bad + "]", field: "[0].ip",
			wantErr: `[0].ip: "999.1.1.1" is not an IP address`},
		{name: "element not an object", body: "[" + one + ", 7]", field: "[1]",
			wantErr: `[1]: expected a JSON object, got number`},
		{name: "unknown field in element", body: `[` + one + `,` + string(eventJSON(t, map[string]any{"x": 1})) + `]`,
			field: "[1].x", wantErr: `[1].x: unknown field`},
		{name: "bad single object", body: bad, field: "ip", wantErr: `ip: "999.1.1.1" is not an IP address`},
		{name: "broken array", body: "[" + one, wantErr: "invalid JSON at byte"},
		// Where an element stops being JSON, the element and the member are named, as in a single
		// event (a tab pasted into one device id of a batch named only a byte offset).
		{name: "tab in an element's member", body: "[" + one + `,{"event_id":"e2","device_id":"rig` + "\t" + `01"}]`, field: "[1].device_id",
			wantErr: `[1].device_id: invalid JSON at byte`},
		{name: "element cut in a member", body: "[" + one + `,{"event_id":"e2","device_id":"rig`, field: "[1].device_id",
			wantErr: `[1].device_id: invalid JSON at byte`},
		{name: "tab in an element's phone", body: "[" + one + `,{"event_id":"e2","phone":"1381234` + "\t" + `8000"}]`, field: "[1].phone",
			wantErr: `[1].phone: invalid JSON: its value stops being JSON (send the number as a JSON string)`},
		{name: "bad literal in an element", body: `[{"event_id":tru}]`, field: "[0].event_id", wantErr: `[0].event_id: invalid JSON at byte`},
		{name: "element's member without a colon", body: `[{"event_id" "e"}]`, field: "[0]", wantErr: `[0]: invalid JSON at byte`},
		{name: "comma missing between elements", body: "[" + one + " " + two + "]", wantErr: "invalid JSON at byte"},
		{name: "trailing data after array", body: "[" + one + "] x", wantErr: "invalid JSON at byte"},
		{name: "not an event", body: `"evt"`, wantErr: "expected a JSON object, got string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := DecodeEvents([]byte(c.body))
			if c.wantErr != "" {
				fe, ok := AsFieldError(err)
				switch {
				case err == nil:
					t.Fatalf("accepted: %+v", evs)
				case !strings.HasPrefix(err.Error(), c.wantErr):
					t.Errorf("error %q, want %q", err, c.wantErr)
				case !ok || fe.Field != c.field:
					t.Errorf("error %#v, want a *FieldError for field %q", err, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ev := range evs {
				ids = append(ids, ev.EventID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(c.wantIDs) {
				t.Errorf("decoded %v, want %v", ids, c.wantIDs)
			}
		})
	}
}

func TestDecodeCheckRequest(t *testing.T) {
	got, err := DecodeCheckRequest([]byte(`{"phone":"+8613812348000","ip":"::ffff:10.1.2.3","app_id":"app-1",
		"carrier":"CM","flow":"one_click_login","platform":"ios","device_id":"d1",
		"token_digest":"` + strings.ToUpper(testDigest) + `","ex_id":"x1"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := CheckRequest{
		Phone: "13812348000", IP: netip.MustParseAddr("10.1.2.3"), Carrier: "CM", AppID: "app-1",
		Flow: FlowOneClickLogin, Platform: "ios", DeviceID: "d1", TokenDigest: testDigest, ExID: "x1",
	}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	minimal, err := DecodeCheckRequest([]byte(`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a"}`))
	if err != nil || minimal.Flow != "" || minimal.Phone != "13812348000" {
		t.Errorf("minimal request: %+v, %v", minimal, err)
	}

	for body, wantErr := range map[string]string{
		``:                                       "body is empty: expected a JSON object",
		"  \n":                                   "body is empty: expected a JSON object",
		`[]`:                                     "expected a JSON object, got array",
		`{}`:                                     "phone: is required",
		`{"phone":"13812348000","ip":"1.2.3.4"}`: "app_id: is required",
		`{"phone":"13812348000","app_id":"a"}`:   "ip: is required",
		`{"phone":"13812348000","ip":"1.2.3","app_id":"a"}`:                  `ip: "1.2.3" is not an IP address`,
		`{"phone":"1381234800","ip":"1.2.3.4","app_id":"a"}`:                 `phone: is not a mainland mobile number: 10 digits after the optional +86, expected 11 (or 13 for a 14x IoT number)`,
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","flow":"x"}`:     `flow: "x" is not one of one_click_login, number_verify, h5_quick_login, sms_fallback`,
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","outcome":"x"}`:  "outcome: unknown field",
		`{"phone":"13812348000","IP":"1.2.3.4","app_id":"a"}`:                "IP: unknown field",
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","ip":"1.2.3.5"}`: "ip: appears more than once",
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":7}`:                  "app_id: must be a string, got number",
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","ex_id":"\n"}`:   "ex_id: contains a control character",
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a"} {}`:             "unexpected data after the JSON object",
		// No object at all: a number followed by more was "unexpected data after the JSON object".
		"000":  "expected a JSON object, got number",
		"0{}":  "expected a JSON object, got number",
		"0x1":  "expected a JSON object, got number",
		"[] 1": "unexpected data after the JSON array",
	} {
		_, err := DecodeCheckRequest([]byte(body))
		if err == nil || err.Error() != wantErr {
			t.Errorf("DecodeCheckRequest(%s): %v, want %s", body, err, wantErr)
		}
		if _, ok := AsFieldError(err); !ok {
			t.Errorf("DecodeCheckRequest(%s): %T is not a *FieldError", body, err)
		}
	}
}

func TestFieldError(t *testing.T) {
	if got := (&FieldError{Reason: "body is empty"}).Error(); got != "body is empty" {
		t.Errorf("document error reads %q", got)
	}
	wrapped := fmt.Errorf("decode event %s: %w", "evt-1", &FieldError{Field: "ip", Reason: "bad"})
	fe, ok := AsFieldError(wrapped)
	if !ok || fe.Field != "ip" || wrapped.Error() != "decode event evt-1: ip: bad" {
		t.Errorf("AsFieldError(%v) = %v, %v", wrapped, fe, ok)
	}
	if _, ok := AsFieldError(errors.New("other")); ok {
		t.Error("AsFieldError found a FieldError in a plain error")
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"13812348000":   "1381234****",
		"1440123456789": "1440123******",
		"12345678":      "1234567*",
		"1234567":       "*******",
		"":              "",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPhoneSegment(t *testing.T) {
	for in, want := range map[string]string{
		"13812348000":   "1381234",
		"1440123456789": "1440123",
		"1381234":       "1381234",
		"138":           "138",
	} {
		if got := PhoneSegment(in); got != want {
			t.Errorf("PhoneSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPhoneHasher(t *testing.T) {
	keyA, keyB := []byte("key-a"), []byte("key-b")
	a, b := NewPhoneHasher(keyA), NewPhoneHasher(keyB)

	mac := hmac.New(sha256.New, keyA)
	mac.Write([]byte("13812348000"))
	want := hex.EncodeToString(mac.Sum(nil))
	if got := a.Hex("13812348000"); got != want {
		t.Errorf("Hex = %s, want HMAC-SHA256 %s", got, want)
	}
	if got := a.Hex("13812348000"); len(got) != 64 || strings.ToLower(got) != got {
		t.Errorf("Hex %q is not 64 lower-case hex digits", got)
	}
	if a.Hex("13812348000") == b.Hex("13812348000") {
		t.Error("different keys give the same hash")
	}
	if a.Hex("13812348000") == a.Hex("13812348001") {
		t.Error("different numbers give the same hash")
	}
	sum := a.Sum("13812348000")
	if hex.EncodeToString(sum[:]) != want {
		t.Error("Sum and Hex disagree")
	}

	// The caller's key slice may change afterwards without changing the hasher.
	key := []byte("key-c")
	c := NewPhoneHasher(key)
	before := c.Hex("13812348000")
	key[0] = 'X'
	if c.Hex("13812348000") != before {
		t.Error("the hasher follows changes to the caller's key slice")
	}
}

func TestPhoneHasherConcurrent(t *testing.T) {
	h := NewPhoneHasher([]byte("shared"))
	phones := make([]string, 64)
	want := make([]string, len(phones))
	for i := range phones {
		phones[i] = fmt.Sprintf("138%08d", i)
		want[i] = h.Hex(phones[i])
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 500 {
				i := (g*7 + n) % len(phones)
				if got := h.Hex(phones[i]); got != want[i] {
					errs <- fmt.Sprintf("goroutine %d: Hex(%s) = %s, want %s", g, phones[i], got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestValidScore(t *testing.T) {
	for s, want := range map[int]bool{0: true, 300: true, 600: true, 900: true, 1: false, 450: false, -300: false, 1000: false} {
		if ValidScore(s) != want {
			t.Errorf("ValidScore(%d) = %v", s, !want)
		}
	}
}

func TestDecodeScoreRecord(t *testing.T) {
	rec := ScoreRecord{
		EventID: "evt-1", TS: tsExample, AppID: "app-1", Flow: FlowOneClickLogin,
		PhoneHash: strings.Repeat("ab", 32), PhoneMasked: "1381234****", PhoneSegment: "1381234",
		IP: "223.104.63.18", Carrier: "CM", Outcome: OutcomeSuccess,
		Geo:   Geo{Country: "CN", Province: "Guangdong", City: "Shenzhen", Lat: 22.5, Lon: 114.1, ASN: 9808, IPType: "mobile"},
		Score: ScoreStepUp, Tags: []string{"ip_many_phones"},
		Detail:       map[string]TagDetail{"ip_many_phones": {Score: ScoreStepUp, Reason: "38 phones"}},
		Hits:         []RuleHit{{Rule: "ip_many_phones_1h", Tag: "ip_many_phones", Score: 600, Mode: "enforce", Reason: "38 phones"}, {Rule: "new", Tag: "x", Score: 900, Mode: "shadow"}},
		RulesVersion: "v7", ScoredAt: tsExample.Add(3 * time.Millisecond),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeScoreRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	if string(gotJSON) != string(data) {
		t.Errorf("round trip\n got %s\nwant %s", gotJSON, data)
	}
	if !got.TS.Equal(rec.TS) || got.Hits[1].Mode != "shadow" || got.Geo.ASN != 9808 {
		t.Errorf("decoded %+v", got)
	}

	modify := func(f func(*ScoreRecord)) []byte {
		r := rec
		f(&r)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, c := range map[string]struct {
		doc   []byte
		field string
		msg   string
	}{
		"no event id":    {modify(func(r *ScoreRecord) { r.EventID = "" }), "event_id", "event_id: is required"},
		"no ts":          {[]byte(`{"event_id":"e","phone_hash":"` + strings.Repeat("a", 64) + `"}`), "ts", "ts: is required"},
		"short hash":     {modify(func(r *ScoreRecord) { r.PhoneHash = "abc" }), "phone_hash", "phone_hash: must be 64 hex digits"},
		"score 450":      {modify(func(r *ScoreRecord) { r.Score = 450 }), "score", "score: 450 is not one of 0, 300, 600, 900"},
		"wrong type":     {[]byte(`{"event_id":1}`), "event_id", "decode score record: event_id: must be a string, got number"},
		"not JSON":       {[]byte(`{"event_id"`), "", "decode score record: invalid JSON at byte 11: unexpected end of JSON input"},
		"bad time value": {[]byte(`{"event_id":"e","ts":"yesterday"}`), "ts", `decode score record: ts: "yesterday" is not an RFC 3339 time`},
		"time of a type": {[]byte(`{"event_id":"e","scored_at":12345}`), "scored_at", "decode score record: scored_at: must be an RFC 3339 time string, got number"},
	} {
		_, err := DecodeScoreRecord(c.doc)
		fe, ok := AsFieldError(err)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !strings.HasPrefix(err.Error(), c.msg):
			t.Errorf("%s: error %q, want %q", name, err, c.msg)
		case !ok || fe.Field != c.field:
			t.Errorf("%s: error %#v, want a *FieldError for %q", name, err, c.field)
		}
	}
}

func TestCheckNotFuture(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ts time.Time
		ok bool
	}{
		{now.Add(-48 * time.Hour), true},
		{now.Add(MaxClockSkew), true},
		{now.Add(MaxClockSkew + time.Second), false},
		{time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		err := CheckNotFuture(&VerifyEvent{TS: c.ts}, now, MaxClockSkew)
		if (err == nil) != c.ok {
			t.Errorf("ts %s: err %v, want ok=%v", c.ts, err, c.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ts: ") {
			t.Errorf("error %q does not name the field", err)
		}
		// The node's own clock may be the one behind: the refusal names its time, so that the
		// operator compares the two and looks at NTP.
		if err != nil && (!strings.Contains(err.Error(), "this node's clock, "+now.Format(time.RFC3339)) || !strings.Contains(err.Error(), "NTP")) {
			t.Errorf("error %q does not name this node's clock", err)
		}
	}
}

// An ip that is not one address says what it holds when it is one of the usual mistakes: an
// X-Forwarded-For list as it came, a port, blanks around it.
func TestParseIPSaysWhatItHolds(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7, 10.0.0.1":  `ip: "203.0.113.7, 10.0.0.1" is not an IP address: a list (an X-Forwarded-For header as it came?)`,
		"203.0.113.7,10.0.0.1":   `ip: "203.0.113.7,10.0.0.1" is not an IP address: a list`,
		"203.0.113.7:443":        `ip: "203.0.113.7:443" is not an IP address: it holds a port`,
		"[2409:8a00::1]:8443":    `ip: "[2409:8a00::1]:8443" is not an IP address: it holds a port`,
		"[2409:8a00::1]":         `ip: "[2409:8a00::1]" is not an IP address: in brackets (as a URL writes it): send the address alone`,
		" 203.0.113.7 ":          `ip: " 203.0.113.7 " is not an IP address: blanks around it`,
		"999.1.1.1":              `ip: "999.1.1.1" is not an IP address`,
		"not an address, really": `ip: "not an address, really" is not an IP address: a list`,
	} {
		_, err := ParseIP(in)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseIP(%q) = %v, want %q…", in, err, want)
		}
		if in == "999.1.1.1" && err != nil && err.Error() != want {
			t.Errorf("ParseIP(%q) = %v, want exactly %q", in, err, want)
		}
	}
}

// An id or name named outside an event (an app key, an admin name, a flag's app) is refused with an
// invisible format character in it — an app key copied with a file's BOM shows as another and
// matches nothing typed — naming the field; a device id is not, as events carry such ids and device
// keys leave the characters out.
func TestCheckIDRefusesFormatCharacters(t *testing.T) {
	for _, v := range []string{"shop\ufeff", "\ufeffshop", "sh\u200bop", "sh\u00adop", "shop\u200e", "shop\U000e0041"} {
		err := CheckID("app_id", v, MaxAppIDLen)
		fe, ok := AsFieldError(err)
		if !ok || fe.Field != "app_id" || !strings.Contains(fe.Reason, "invisible format character U+") {
			t.Errorf("CheckID(%q): %v, want a FieldError of app_id naming the character", v, err)
		}
		if err := CheckDeviceID("device_id", v, MaxDeviceIDLen); err != nil {
			t.Errorf("CheckDeviceID(%q): %v, want it taken as an event's device_id is", v, err)
		}
	}
	if fe, ok := AsFieldError(CheckID("app_id", "shop\ufeff", MaxAppIDLen)); !ok || !strings.Contains(fe.Reason, "U+FEFF at byte 4") {
		t.Errorf("CheckID of a BOM: %v", fe)
	}
	for _, v := range []string{"", "shop", "shop/cn", "美团外卖", "app a", " a1", "a+b@c", "ｓｈｏｐ"} {
		if err := CheckID("app_id", v, MaxAppIDLen); err != nil {
			t.Errorf("CheckID(%q): %v, want it taken", v, err)
		}
	}
	// What shows nothing at all is still refused as blank, as before.
	if fe, ok := AsFieldError(CheckID("app_id", "\ufeff", MaxAppIDLen)); !ok || !strings.Contains(fe.Reason, "is blank") {
		t.Errorf("CheckID of a lone BOM: %v, want it refused as blank", fe)
	}
}
