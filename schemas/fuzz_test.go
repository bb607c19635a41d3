package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeEvent checks, for any input, that DecodeEvent never panics; that what it accepts
// marshals back into a document it decodes to the same value; and that what it refuses comes with
// a *FieldError that is safe to answer and log (checkFieldError).
func FuzzDecodeEvent(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(eventsDir, "*", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(benchEvent)
	f.Add([]byte(`{"schema":"1.1","phone":"13812348000","Phone":"x","x":{"y":[1,"]}"]}}`))
	f.Add([]byte(`{"ts":"2025-03-14T09:26:53.1234567890123+08:00","ip":"::ffff:1.2.3.4"}`))
	for _, seed := range phoneSeeds() {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			checkFieldError(t, data, err)
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal %+v: %v", ev, err)
		}
		again, err := DecodeEvent(out)
		if err != nil {
			t.Fatalf("accepted %q, decoded %+v, but refuses its own output %s: %v", data, ev, out, err)
		}
		if again != ev {
			t.Fatalf("round trip changed the event:\n first %+v\nsecond %+v", ev, again)
		}
	})
}

// FuzzDecodeCheckRequest checks, for any input, that DecodeCheckRequest never panics; that what it
// accepts is normalized (bare phone digits, unmapped IP, lower-case digest, known enums, clean
// free text) and decodes the same after marshalling; and that what it refuses comes with a
// *FieldError that is safe to answer and log (checkFieldError).
func FuzzDecodeCheckRequest(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(eventsDir, "*", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data) // events: mostly refused (unknown fields), with every kind of bad value
	}
	for _, seed := range []string{
		`{"phone":"+8613812348000","ip":"223.104.3.7","carrier":"CM","app_id":"app1","flow":"one_click_login","platform":"android","device_id":"d-1","token_digest":"` + strings.Repeat("aB", 32) + `","ex_id":"ex-42"}`,
		`{"phone":"13812348000","ip":"::ffff:10.1.2.3","app_id":"a"}`,
		`{"phone":"1440123456789","ip":"2001:db8::1","app_id":"a","flow":null,"carrier":""}`,
		`{"phone":"+86 138 1234 8000","ip":"1.2.3.4","app_id":"a"}`,
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","ex_id":"\ud800"}`,
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","ex_id":"\ud83d\ude00 \u0031\u0033\u0038"}`,
		`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a","\u0070hone":"1"}`,
	} {
		f.Add([]byte(seed))
	}
	for _, seed := range phoneSeeds() {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeCheckRequest(data)
		if err != nil {
			checkFieldError(t, data, err)
			return
		}
		checkNormalized(t, data, &req)
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal %+v: %v", req, err)
		}
		again, err := DecodeCheckRequest(out)
		if err != nil {
			t.Fatalf("accepted %q, decoded %+v, but refuses its own output %s: %v", data, req, out, err)
		}
		if again != req {
			t.Fatalf("round trip changed the request:\n first %+v\nsecond %+v", req, again)
		}
	})
}

// phoneSeeds put phone numbers, in the formats callers use, where an error message could echo
// them: in every field, as a member name, inside a ts that is not a string.
func phoneSeeds() [][]byte {
	var out [][]byte
	for _, p := range []string{"+86 138 1234 8000", "86-138-1234-8000", "tel:13812348000", "(138)12348000", "１３８１２３４８０００"} {
		for _, field := range []string{"phone", "ip", "flow", "carrier", "platform", "ts", "schema", "app_id", "ex_id", "device_id", "event_id", "error_code", "token_digest", "decision_id", p} {
			b, _ := json.Marshal(map[string]string{"phone": "13812348000", "ip": "1.2.3.4", "app_id": "a", field: p})
			out = append(out, b)
		}
	}
	return append(out,
		[]byte(`{"ts":13812348000.5}`),
		[]byte(`{"ts":[1,"+86 138 1234 8000"]}`),
		[]byte("{\"ex_id\":\"a\xffb\",\"phone\":\"13812348000\"}"),
		[]byte(`{"`+strings.Repeat("k", 2000)+`":1}`),
	)
}

// checkFieldError asserts what every decoding error must be: a *FieldError with a reason, whose
// message is valid UTF-8, at most MaxErrorLen bytes long (without the cap in Error having to cut
// it), and free of phone numbers — none in any format, and, about the phone field, no run of
// digits at all.
func checkFieldError(t *testing.T, data []byte, err error) {
	t.Helper()
	fe, ok := AsFieldError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Reason == "" {
		t.Fatalf("FieldError %#v has no reason", fe)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) {
		t.Fatalf("error message is not valid UTF-8: %q", msg)
	}
	if n := len(fe.Field) + len(": ") + len(fe.Reason); n > MaxErrorLen {
		t.Fatalf("error message is %d bytes long: %.200q…", n, msg)
	}
	if mayShowPhone(msg) {
		t.Fatalf("error message shows a phone number: %q (input %q)", msg, data)
	}
	if fe.Field == "phone" && longDigitRun(msg) {
		t.Fatalf("error about the phone shows its digits: %q (input %q)", msg, data)
	}
}

// longDigitRun reports whether s has 4 or more digits in a row. NormalizePhone's messages have
// none: they give counts and positions, never digits of the value.
func longDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			n = 0
		} else if n++; n >= 4 {
			return true
		}
	}
	return false
}

// checkNormalized asserts that an accepted check request holds normalized, valid values.
func checkNormalized(t *testing.T, data []byte, r *CheckRequest) {
	t.Helper()
	if _, err := NormalizePhone(r.Phone); err != nil || len(r.Phone) != 11 && len(r.Phone) != 13 {
		t.Fatalf("accepted %q with phone %q, not bare digits", data, r.Phone)
	}
	if !r.IP.IsValid() || r.IP.Is4In6() || r.IP.Zone() != "" {
		t.Fatalf("accepted %q with ip %v, not a plain unmapped address", data, r.IP)
	}
	if r.TokenDigest != "" && (len(r.TokenDigest) != 64 || strings.Trim(r.TokenDigest, "0123456789abcdef") != "") {
		t.Fatalf("accepted %q with token_digest %q, not 64 lower-case hex digits", data, r.TokenDigest)
	}
	if r.AppID == "" {
		t.Fatalf("accepted %q without app_id", data)
	}
	for field, v := range map[string]string{"app_id": r.AppID, "device_id": r.DeviceID, "ex_id": r.ExID} {
		if !utf8.ValidString(v) || ContainsPhone(v) || strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			t.Fatalf("accepted %q with %s %q", data, field, v)
		}
	}
	for _, e := range []struct {
		v   string
		all []string
	}{{r.Flow, append([]string{""}, flows...)}, {r.Carrier, carriers}, {r.Platform, platforms}} {
		if !slices.Contains(e.all, e.v) {
			t.Fatalf("accepted %q with %q, not one of %q", data, e.v, e.all)
		}
	}
}

// FuzzEventSchemaAgreement checks that DecodeEvent and verify_event.schema.json give the same
// verdict on any input, except where one of the documented differences (knownDifferences) is in
// play.
func FuzzEventSchemaAgreement(f *testing.F) {
	sch := compileSchema(f, eventSchemaFile)
	for _, dir := range []string{"valid", "invalid"} {
		for _, data := range readExamples(f, dir) {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if mayDiffer(data) {
			t.Skip("a documented difference applies")
		}
		_, goErr := DecodeEvent(data)
		schemaErr := schemaVerdict(sch, data)
		if (goErr == nil) != (schemaErr == nil) {
			t.Fatalf("disagreement on %q\n   Go: %v\nschema: %v", data, goErr, schemaErr)
		}
	})
}

// surrogateEscape matches a \u escape of a surrogate, paired or not (a cheap over-approximation of
// an unpaired one).
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

var byteLimits = map[string]int{
	"event_id": MaxEventIDLen, "app_id": MaxAppIDLen, "device_id": MaxDeviceIDLen,
	"error_code": MaxErrorCodeLen, "ex_id": MaxExIDLen, "decision_id": MaxDecisionIDLen,
}

// mayDiffer reports whether data touches one of the rules JSON Schema cannot state: a member given
// twice, a value over a byte limit but within it in characters, a ts number not written as a
// plain integer, a ts string dated in a year at the 2000..2100 bounds, text that is not valid
// Unicode, or a free-text field holding a phone number.
func mayDiffer(data []byte) bool {
	if !utf8.Valid(data) || surrogateEscape.Match(data) {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		key, _ := tok.(string)
		if seen[key] {
			return true
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return false
		}
		if limit, ok := byteLimits[key]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil && (len(s) > limit && utf8.RuneCountInString(s) <= limit || ContainsPhone(s)) {
				return true
			}
		}
		switch key {
		case "ts":
			if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') && bytes.ContainsAny(raw, ".eE") {
				return true
			}
			var s string
			if json.Unmarshal(raw, &s) == nil && len(s) >= 4 {
				switch s[:4] {
				case "1999", "2000", "2099", "2100":
					return true
				}
			}
		}
	}
	return false
}

// FuzzMaskPhones: what MaskPhones returns, and what Excerpt shows once unquoted, read in any way
// (escapes decoded, digits of any script, runs of separators) holds no phone-like number.
func FuzzMaskPhones(f *testing.F) {
	for _, p := range phoneFormats {
		f.Add(p, 20)
	}
	f.Add(`\u0031\x33%31&#49;\061`, 5)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 1 || n > 300 {
			n = 40
		}
		if m := MaskPhones(s); mayShowPhone(m) {
			t.Fatalf("MaskPhones(%q) = %q shows a phone-like number", s, m)
		}
		e := Excerpt(s, n)
		u, err := strconv.Unquote(strings.Replace(e, "…\"", "\"", 1))
		if err != nil {
			t.Fatalf("Excerpt(%q, %d) = %s does not unquote: %v", s, n, e, err)
		}
		if mayShowPhone(u) {
			t.Fatalf("Excerpt(%q, %d) = %s shows a phone-like number", s, n, e)
		}
	})
}
