package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The decoders read JSON with a hand-written single-pass scanner (scan.go) and parse ts without
// time.Parse. These tests compare each piece with what it replaced — json.Valid, encoding/json's
// string decoding, time.Parse, strconv.ParseInt — and the whole decoders with the reference copy
// of the previous ones (reference_test.go), on random and hostile input: the same events, the same
// errors word for word.

// sameResult reports how two decoding results differ, "" if they do not.
func sameResult[T comparable](got T, gotErr error, want T, wantErr error) string {
	switch {
	case (gotErr == nil) != (wantErr == nil):
		return fmt.Sprintf("error %v, reference %v", gotErr, wantErr)
	case gotErr != nil:
		g, _ := AsFieldError(gotErr)
		w, _ := AsFieldError(wantErr)
		if g == nil || w == nil || *g != *w {
			return fmt.Sprintf("error %#v, reference %#v", gotErr, wantErr)
		}
	case got != want:
		return fmt.Sprintf("decoded %+v, reference %+v", got, want)
	}
	return ""
}

// checkAgainstReference decodes data with both decoders, as an event and as a check request.
func checkAgainstReference(t *testing.T, data []byte) {
	t.Helper()
	ev, err := DecodeEvent(data)
	refEv, refErr := refDecodeEvent(data)
	if d := sameResult(ev, err, refEv, refErr); d != "" {
		t.Fatalf("DecodeEvent(%q): %s", data, d)
	}
	req, err := DecodeCheckRequest(data)
	refReq, refErr := refDecodeCheckRequest(data)
	if d := sameResult(req, err, refReq, refErr); d != "" {
		t.Fatalf("DecodeCheckRequest(%q): %s", data, d)
	}
}

// Hostile pieces the generators use.
var (
	hostileStrings = []string{
		"", "a", "13812348000", "+8613812348000", "+86 138 1234 8000", "１３８１２３４８０００",
		"2025-03-14T09:26:53Z", "2025-03-14t09:26:53.123456789z", "2025-03-14T09:26:53+08:00",
		"2024-02-29T23:59:59-23:59", "2100-01-01T00:00:00Z", "1999-12-31T23:59:59.9999999999Z",
		"223.104.63.18", "::ffff:1.2.3.4", "2408:8456:3c10:1a2b::7f", "fe80::1%eth0", "999.1.1.1",
		"one_click_login", "sms_fallback", "success", "fail", "CM", "cm", "android", "web",
		strings.Repeat("aB", 32), strings.Repeat("0", 63), strings.Repeat("g", 64),
		"1.0", "1.1", "1.27", "2.0", "1.+1", "1.", "1.00000000000",
		"order-20250314-000123", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "tel:13812348000",
		"a\tb", "x\x7fy", "\u2028", "订单/1", "😀", strings.Repeat("e", 65), strings.Repeat("事", 22),
	}
	hostileRaw = []string{
		`"\ud800"`, `"\udc00x"`, `"\ud83d\ude00"`, `"\ud83d\u0041"`, `"\uD83D\uDE00"`, `"a\u0000b"`,
		`"\u0031\u0033\u0038\u0031\u0032\u0033\u0034\u0038\u0030\u0030\u0030"`, `"\/\\\"\b\f\n\r\t"`,
		"\"a\xffb\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "\"\xe4\xb8\"", "\"\xef\xbc\x91\"",
		`null`, `true`, `false`, `0`, `-0`, `1741944413589`, `946684800000`, `4102444800001`,
		`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `1.5`, `1e3`, `-1E-2`,
		`{}`, `[]`, `{"a":[1,{"b":"\u00e9"}]}`, `[1,"+86 138 1234 8000"]`, "[\"\xff\"]", `{"x":null}`,
	}
	memberNames = []string{
		"schema", "event_id", "ts", "app_id", "flow", "phone", "ip", "carrier", "platform",
		"device_id", "outcome", "error_code", "token_digest", "ex_id", "decision_id",
	}
	hostileNames = []string{
		`PHONE`, `Phone`, `extra`, ``, `\u0070hone`, `ph\u006fne`, `\u0074s`, `x\ud800`, "ex\xffid",
		`\ud83d\ude00`, `+86 138 1234 8000`, `a"b`, strings.Repeat("k", 60),
	}
	spaces = []string{"", "", "", " ", "\n  ", "\t", "\r\n"}
	// goodValues are valid values of the optional members.
	goodValues = map[string][]string{
		"schema": {"1.0"}, "carrier": {"CM", "CU", "CT", ""}, "platform": {"android", "ios", "harmony", "h5", "web"},
		"device_id": {"a3f9e2c1d4b5a6f7e8d9c0b1a2f3e4d5", "设备-1", "d 1"}, "error_code": {"-40101", "103911", ""},
		"token_digest": {strings.Repeat("aB", 32), strings.Repeat("0f", 32)}, "ex_id": {"order-20250314-000123", "订单/1", "😀"},
		"decision_id": {"api1-5f3a9c2e-00000000000004d2", "d"},
	}
)

// quote writes s as a JSON string, sometimes with every character escaped.
func quote(r *rand.Rand, s string) string {
	if r.IntN(8) == 0 && utf8.ValidString(s) {
		var b strings.Builder
		b.WriteByte('"')
		for _, c := range s {
			if c > 0xffff {
				c1, c2 := (c-0x10000)>>10+0xd800, (c-0x10000)&0x3ff+0xdc00
				fmt.Fprintf(&b, `\u%04x\u%04X`, c1, c2)
			} else {
				fmt.Fprintf(&b, `\u%04x`, c)
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	out, _ := json.Marshal(s)
	return string(out)
}

// randomValue is a JSON value (or something close to one) for a member.
func randomValue(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return hostileRaw[r.IntN(len(hostileRaw))]
	default:
		return quote(r, hostileStrings[r.IntN(len(hostileStrings))])
	}
}

// randomEventDoc is an object with known, misspelled and unknown members, good and bad values.
func randomEventDoc(r *rand.Rand) []byte {
	base := map[string]string{
		"event_id": `"evt-1"`, "ts": `"2025-03-14T09:26:53Z"`, "app_id": `"app-1"`, "flow": `"one_click_login"`,
		"phone": `"13812348000"`, "ip": `"1.2.3.4"`, "outcome": `"success"`,
	}
	var b strings.Builder
	sp := func() { b.WriteString(spaces[r.IntN(len(spaces))]) }
	b.WriteByte('{')
	n := 0
	member := func(name, value string) {
		if n > 0 {
			sp()
			b.WriteByte(',')
		}
		sp()
		if strings.ContainsAny(name, "\\\"") || !utf8.ValidString(name) {
			b.WriteString(`"` + name + `"`)
		} else {
			b.WriteString(quote(r, name))
		}
		sp()
		b.WriteByte(':')
		sp()
		b.WriteString(value)
		n++
	}
	// Half the documents are near valid: one change in 20 members, so most are accepted or fail
	// late (validation, schema version); the other half go wild.
	odds := 20
	if r.IntN(2) == 0 {
		odds = 3
	}
	for _, name := range r.Perm(len(memberNames)) {
		name := memberNames[name]
		switch v, ok := base[name]; {
		case r.IntN(odds) == 0:
			member(name, randomValue(r))
		case ok && r.IntN(odds*3) > 0:
			member(name, v)
		case name == "schema" && r.IntN(3) == 0:
			member(name, quote(r, []string{"1", "1.0", "1.1", "1.12"}[r.IntN(4)]))
		case !ok && r.IntN(2) == 0:
			member(name, quote(r, goodValues[name][r.IntN(len(goodValues[name]))]))
		}
		if r.IntN(odds*4) == 0 {
			member(name, randomValue(r)) // given twice
		}
		if r.IntN(odds*3) == 0 {
			member(hostileNames[r.IntN(len(hostileNames))], randomValue(r))
		}
	}
	sp()
	b.WriteByte('}')
	sp()
	return []byte(b.String())
}

// mutate changes data a little, in the ways that break JSON.
func mutate(r *rand.Rand, data []byte) []byte {
	out := bytes.Clone(data)
	const pieces = "\"{}[],:\\ \t\n\x00\x1f\x7f\xff\xc3\xed0123456789-+.eEtfnu"
	for range r.IntN(3) + 1 {
		if len(out) == 0 {
			out = append(out, pieces[r.IntN(len(pieces))])
			continue
		}
		i := r.IntN(len(out))
		switch r.IntN(6) {
		case 0:
			out = append(out[:i], out[i+1:]...)
		case 1:
			out = append(out[:i], append([]byte{pieces[r.IntN(len(pieces))]}, out[i:]...)...)
		case 2:
			out[i] = pieces[r.IntN(len(pieces))]
		case 3:
			out = out[:i]
		case 4:
			j := i + r.IntN(len(out)-i)
			out = append(out[:j], append(bytes.Clone(out[i:j]), out[j:]...)...)
		case 5:
			out = append(out, []string{" {}", "x", "\n", ",", "]", "\x00"}[r.IntN(6)]...)
		}
	}
	return out
}

// exampleDocs are the documents of testdata/events and the seeds the tests use.
func exampleDocs(t testing.TB) [][]byte {
	paths, err := filepath.Glob(filepath.Join(eventsDir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	docs := [][]byte{benchEvent, checkDoc, nil, []byte(" "), []byte("{}"), []byte(`{"a":1}`)}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, data)
	}
	return append(docs, phoneSeeds()...)
}

func TestDecodeMatchesReference(t *testing.T) {
	docs := exampleDocs(t)
	for _, doc := range docs {
		checkAgainstReference(t, doc)
	}
	r := rand.New(rand.NewPCG(21, 22))
	n := 40000
	if testing.Short() || raceEnabled {
		n = 4000
	}
	for range n {
		doc := randomEventDoc(r)
		checkAgainstReference(t, doc)
		checkAgainstReference(t, mutate(r, doc))
		checkAgainstReference(t, mutate(r, docs[r.IntN(len(docs))]))
	}
}

// scanDoc is the scanner's verdict on a whole document.
func scanDoc(data []byte) bool {
	i := skipSpace(data, 0)
	if i == len(data) {
		return false
	}
	end, _ := scanValue(data, i, 1)
	return end >= 0 && skipSpace(data, end) == len(data)
}

// randomJSON is a random JSON value, at most depth deep, spaced at random.
func randomJSON(r *rand.Rand, depth int) string {
	sp := func() string { return spaces[r.IntN(len(spaces))] }
	switch k := r.IntN(9); {
	case k < 2 && depth > 0:
		var parts []string
		for range r.IntN(4) {
			parts = append(parts, sp()+randomJSON(r, depth-1)+sp())
		}
		return "[" + strings.Join(parts, ",") + sp() + "]"
	case k < 4 && depth > 0:
		var parts []string
		for range r.IntN(4) {
			parts = append(parts, sp()+quote(r, randomString(r))+sp()+":"+sp()+randomJSON(r, depth-1)+sp())
		}
		return "{" + strings.Join(parts, ",") + sp() + "}"
	case k < 6:
		return quote(r, randomString(r))
	case k < 7:
		return hostileRaw[r.IntN(len(hostileRaw))]
	default:
		return []string{"0", "-0", "12", "-1.5", "1e9", "2E-3", "0.000", "-12.5e+07", "true", "false", "null"}[r.IntN(11)]
	}
}

// The scanner accepts exactly what json.Valid accepts; decodeObject refuses the same documents
// with the message encoding/json gives.
func TestScanMatchesJSONValid(t *testing.T) {
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	docs := []string{
		"", " ", "0", "-", "-0", "01", "-01", "1.", ".1", "1.e5", "1e", "1e+", "1E-5", "0.0e0", "2e308",
		"1.5e", "-a", "+1", "0x1", "1_0", "tru", "nul", "falsee", "true false", "nulll", "[1,]", "[,1]",
		"{,}", `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{1:2}`, `[1 2]`, `["a":1]`,
		"\"\\x\"", `"\u12"`, `"\u12G4"`, `"\U0041"`, "\"\\", `"\`, `"`, `"a`, "\"\t\"", "\"\x00\"", "\"\x1f\"",
		"\"\x7f\"", "\"\xff\"", "\xef\xbb\xbf{}", "{}\x00", "{}\v", "\f{}", "{\"a\":1}\n", "[\"\\u00e9\\/\"]",
		nest("[", "]", 9999), nest("[", "]", 10000), nest("[", "]", 10001),
		`{"a":` + nest("[", "]", 9999) + `}`, `{"a":` + nest("[", "]", 10000) + `}`,
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
		"[" + nest("[", "]", 9998) + "," + nest("{", "}", 0) + "]",
	}
	for c := range 256 {
		docs = append(docs, `"`+string(rune(c))+`"`, `"`+string([]byte{byte(c)})+`"`, `"\`+string([]byte{byte(c)})+`"`,
			`{"a":`+string([]byte{byte(c)})+`}`, string([]byte{byte(c)}), `1`+string([]byte{byte(c)}))
	}
	r := rand.New(rand.NewPCG(31, 32))
	n := 60000
	if testing.Short() || raceEnabled {
		n = 6000
	}
	for range n {
		doc := randomJSON(r, 4)
		docs = append(docs, doc, string(mutate(r, []byte(doc))), "{"+doc)
		if r.IntN(2) == 0 {
			docs = append(docs, `{"k":`+doc+`}`, `{"k":`+string(mutate(r, []byte(doc)))+`}`)
		}
	}
	for _, doc := range docs {
		data := []byte(doc)
		want := json.Valid(data)
		if got := scanDoc(data); got != want {
			t.Fatalf("scanner says valid=%v for %.200q, json.Valid %v", got, data, want)
		}
		var vals objectValues
		_, _, err := decodeObject(data, eventMembers, &vals, nil)
		i := skipSpace(data, 0)
		switch {
		case !want:
			wantErr := refMemberSyntaxError(data)
			if startsWithBOM(data) { // named as such, not as encoding/json's "invalid character 'ï'"
				wantErr = errBOM
			}
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("decodeObject(%.200q): %v, want the syntax error %v", data, err, wantErr)
			}
		case data[i] == '{':
			if err != nil {
				t.Fatalf("decodeObject(%.200q): %v, want no error", data, err)
			}
		case err == nil || !strings.HasPrefix(err.Error(), "expected a JSON object, got "):
			t.Fatalf("decodeObject(%.200q): %v", data, err)
		}
	}
}

// randomStringContent is the inside of a JSON string literal: escapes of every kind, surrogate
// escapes paired or not, raw UTF-8 and bytes that are not UTF-8. It holds no U+FFFD of its own,
// so that one in encoding/json's reading marks text it could not decode.
func randomStringContent(r *rand.Rand) string {
	pieces := []string{
		"a", "Z", " ", "0", "/", "é", "中", "😀", "\u2028", `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`,
		`\u0041`, `\u00e9`, `\u4E2D`, `\u0000`, `\u001f`, `\ud83d\ude00`, `\uD83D\uDE00`, `\ud800`, `\udfff`,
		`\udc00\ud800`, `\ud800\ud800`, `\ud800\u0041`, `\ud800\\u`, `\\ud800`, "\xff", "\xc3", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\xc0\x80", "\xe4\xb8", "\xef\xbc\x91",
	}
	var b strings.Builder
	for range r.IntN(8) {
		if r.IntN(6) == 0 {
			fmt.Fprintf(&b, `\u%04x`, r.IntN(0x10000))
			continue
		}
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), `\ufffd`, `\u0041`), "\uFFFD", "A")
}

// Strings decode as encoding/json decodes them, except that text that is not valid Unicode is
// refused instead of becoming U+FFFD.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	n := 100000
	if testing.Short() || raceEnabled {
		n = 10000
	}
	for range n {
		content := randomStringContent(r)
		raw := []byte(`"` + content + `"`)
		if !json.Valid(raw) {
			continue // a \u escape glued to a hex digit piece, or the like: not a string
		}
		end, flags := scanString(raw, 0)
		if end != len(raw) {
			t.Fatalf("scanString(%q) ends at %d", raw, end)
		}
		if (flags&strEscaped != 0) != strings.Contains(content, `\`) || (flags&strNonASCII != 0) != (strings.IndexFunc(content, func(c rune) bool { return c >= utf8.RuneSelf }) >= 0) {
			t.Fatalf("scanString(%q) flags %b", raw, flags)
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got, why := jsonString(raw)
		if w := stringWhy([]byte(content), flags); w != why {
			t.Fatalf("%q: stringWhy %q, jsonString %q", raw, w, why)
		}
		refGot, refWhy := refJsonString(raw)
		if got != refGot || why != refWhy {
			t.Fatalf("%q: jsonString %q %q, reference %q %q", raw, got, why, refGot, refWhy)
		}
		switch {
		case !utf8.ValidString(content):
			if why != "is not valid UTF-8" {
				t.Fatalf("%q: %q %q, want it refused as not UTF-8", raw, got, why)
			}
		case strings.ContainsRune(want, utf8.RuneError):
			if why != whySurrogate {
				t.Fatalf("%q: %q %q, want it refused for a surrogate (encoding/json reads %q)", raw, got, why, want)
			}
		case why != "" || got != want:
			t.Fatalf("%q: %q %q, encoding/json reads %q", raw, got, why, want)
		}
		buf, bwhy := appendString([]byte("prefix"), []byte(content), flags)
		if bwhy != why || why == "" && string(buf) != "prefix"+want {
			t.Fatalf("appendString(%q): %q %q", content, buf, bwhy)
		}
	}
}

// oldParseRFC3339 is how ts strings were read before parseRFC3339.
func oldParseRFC3339(s string) (time.Time, bool) {
	if !rfc3339Shape(s) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	return t.UTC(), err == nil
}

func TestParseRFC3339MatchesTimeParse(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, ok := parseRFC3339(s)
		want, wantOK := oldParseRFC3339(s)
		if ok != wantOK || ok && got != want {
			t.Fatalf("parseRFC3339(%q) = %v %v, time.Parse %v %v", s, got, ok, want, wantOK)
		}
	}
	// Every day of a few years around the bounds and the leap-year rules, at both ends of the day.
	for _, year := range []int{0, 1, 4, 100, 400, 1600, 1900, 1969, 1970, 1999, 2000, 2023, 2024, 2099, 2100, 2400, 9999} {
		for month := 0; month <= 13; month++ {
			for day := 0; day <= 32; day++ {
				check(fmt.Sprintf("%04d-%02d-%02dT00:00:00Z", year, month, day))
				check(fmt.Sprintf("%04d-%02d-%02dT23:59:59.999999999-23:59", year, month, day))
				check(fmt.Sprintf("%04d-%02d-%02dt12:30:00+23:59", year, month, day))
			}
		}
	}
	r := rand.New(rand.NewPCG(51, 52))
	n2 := func(max int) string { return fmt.Sprintf("%02d", r.IntN(max)) }
	n := 200000
	if testing.Short() || raceEnabled {
		n = 20000
	}
	for range n {
		s := fmt.Sprintf("%04d-%s-%sT%s:%s:%s", r.IntN(10000), n2(14), n2(33), n2(26), n2(62), n2(62))
		if r.IntN(2) == 0 {
			s += "." + fmt.Sprintf("%020d", r.Uint64())[:r.IntN(21)]
		}
		switch r.IntN(4) {
		case 0:
			s += "Z"
		case 1:
			s += "z"
		default:
			s += []string{"+", "-"}[r.IntN(2)] + n2(26) + ":" + n2(62)
		}
		if r.IntN(4) == 0 {
			b := []byte(s)
			b[r.IntN(len(b))] = "0123456789-:TtZz+.x "[r.IntN(20)]
			s = string(b)
		}
		check(s)
	}
	for _, s := range []string{"", "2025-03-14T09:26:53", "2025-03-14T09:26:53.Z", "2025-03-14T09:26:53+08:00:00", "2025-03-14T09:26:60Z", "2025-03-14T24:00:00Z"} {
		check(s)
	}
}

func TestParseInt64MatchesStrconv(t *testing.T) {
	cases := []string{
		"", "+", "-", "0", "-0", "+0", "1", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "18446744073709551615", "18446744073709551616", "99999999999999999999",
		"00000000000000000000000001", "-00000000000000000000009223372036854775808", "1_000", "0x10", " 1", "1 ",
		"1.5", "1e3", "--1", "+-1", "١",
	}
	r := rand.New(rand.NewPCG(61, 62))
	for range 100000 {
		var b strings.Builder
		b.WriteString([]string{"", "", "-", "+"}[r.IntN(4)])
		for range r.IntN(22) {
			b.WriteByte("0123456789"[r.IntN(10)])
		}
		if r.IntN(20) == 0 {
			b.WriteByte("x.e+-_ "[r.IntN(7)])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		got, ok := parseInt64([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("parseInt64(%q) = %d %v, strconv %d %v", s, got, ok, want, err)
		}
	}
}

// The quick tests before the exact phone scan never rule out a string that holds a phone-like
// number: ContainsPhone and checkText answer as they did before.
func TestPhoneQuickTestIsSound(t *testing.T) {
	pieces := []string{
		"0", "1", "8", "6", "3", "9", "13812345678", "86", "0086", "+86", "14", " ", "-", ".", "(", ")", "+",
		"  ", "---", "a", "Z", "x", ":", "_", "/", "中", "１", "３", "\xef", "\n", "\x7f", "\x00", "tel:",
		"%", "%2", "%20", "%2B", "%31", "\u3000", "－", "𝟏", "٣", "\u200b", "\\",
		"\t", "\\t", "e", "E", "e+10", "E12",
	}
	r := rand.New(rand.NewPCG(71, 72))
	var inputs []string
	for _, f := range phoneFormats {
		for _, ctx := range phoneContexts {
			inputs = append(inputs, strings.Replace(ctx, "%s", f, 1))
		}
	}
	for range 300000 {
		var b strings.Builder
		for range r.IntN(16) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		inputs = append(inputs, b.String())
	}
	found := 0
	for _, s := range inputs {
		exact := exactPhoneScan(s, anyReading)
		if exact && !mayHoldPhone(s) {
			t.Fatalf("mayHoldPhone(%q) = false, but it holds a phone-like number", s)
		}
		if got, want := ContainsPhone(s), refContainsPhone(s); got != want {
			t.Fatalf("ContainsPhone(%q) = %v, before %v", s, got, want)
		}
		if exact {
			found++
		}
		// checkText's own pass decides as before: control characters first, then phones.
		err, refErr := checkText("f", s, false, 1<<20), refCheckText("f", s, false, 1<<20)
		if fmt.Sprint(err) != fmt.Sprint(refErr) {
			t.Fatalf("checkText(%q): %v, before %v", s, err, refErr)
		}
	}
	if found < len(inputs)/20 {
		t.Errorf("only %d of %d inputs hold a phone-like number: the test exercises too little", found, len(inputs))
	}
}

// The lookup functions know exactly the members listed.
func TestMemberTables(t *testing.T) {
	for _, fs := range []*fieldSet{eventMembers, checkMembers} {
		if len(fs.names) > maxMembers {
			t.Errorf("%d members, objectValues holds %d", len(fs.names), maxMembers)
		}
		for k, name := range fs.names {
			if got := fs.index([]byte(name)); got != k {
				t.Errorf("index(%q) = %d, want %d", name, got, k)
			}
			if got := fs.index([]byte(strings.ToUpper(name))); got != -1 {
				t.Errorf("index(%q) = %d, want -1", strings.ToUpper(name), got)
			}
		}
	}
	want := []string{"phone", "ip", "carrier", "app_id", "flow", "platform", "device_id", "token_digest", "ex_id"}
	if fmt.Sprint(checkMembers.names) != fmt.Sprint(want) {
		t.Errorf("check request members %q, want %q", checkMembers.names, want)
	}
}

// The decoded event refers to nothing of the input: the caller may reuse its buffer.
func TestDecodedEventDoesNotAliasInput(t *testing.T) {
	for _, doc := range [][]byte{
		benchEvent,
		eventJSON(t, map[string]any{"ex_id": json.RawMessage(`"\u8ba2\u5355\/1"`), "device_id": "d-1", "error_code": "E1"}),
		[]byte(`{"phone":"13812348000","ip":"::ffff:10.1.2.3","app_id":"a","ex_id":"x","token_digest":"` + strings.Repeat("Ab", 32) + `"}`),
	} {
		want, wantErr := DecodeEvent(doc)
		wantReq, wantReqErr := DecodeCheckRequest(doc)
		buf := bytes.Clone(doc)
		got, err := DecodeEvent(buf)
		req, reqErr := DecodeCheckRequest(buf)
		for i := range buf {
			buf[i] = 'x'
		}
		if d := sameResult(got, err, want, wantErr); d != "" {
			t.Errorf("after the input changed: %s", d)
		}
		if d := sameResult(req, reqErr, wantReq, wantReqErr); d != "" {
			t.Errorf("after the input changed: %s", d)
		}
	}
}

// What BenchmarkDecodeEvent measures, held as a test: one allocation per event (the text its
// strings share), and the same for a check request.
func TestDecodeAllocations(t *testing.T) {
	for name, f := range map[string]func(){
		"DecodeEvent":        func() { _, _ = DecodeEvent(benchEvent) },
		"DecodeCheckRequest": func() { _, _ = DecodeCheckRequest(checkDoc) },
	} {
		if n := testing.AllocsPerRun(100, f); n > 1 {
			t.Errorf("%s: %.0f allocations per call, want 1", name, n)
		}
	}
}

// FuzzDecodeMatchesReference checks, for any input, that DecodeEvent and DecodeCheckRequest give
// what the reference decoders give, and that the scanner agrees with json.Valid.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, doc := range exampleDocs(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := scanDoc(data), json.Valid(data); got != want {
			t.Fatalf("scanner says valid=%v for %q, json.Valid %v", got, data, want)
		}
		checkAgainstReference(t, data)
	})
}
