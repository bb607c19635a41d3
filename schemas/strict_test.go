package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

// withRaw puts raw JSON text (which may hold bytes encoding/json would never write) as the value
// of field in doc, a JSON object.
func withRaw(t *testing.T, doc []byte, field, raw string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, field)
	out, _ := json.Marshal(m)
	return []byte(`{"` + field + `":` + raw + "," + string(out[1:]))
}

var checkDoc = []byte(`{"phone":"13812348000","ip":"1.2.3.4","app_id":"a"}`)

// Different invalid text used to become the same U+FFFD: three event ids, one count.
func TestInvalidUnicodeIsRefusedPerField(t *testing.T) {
	bad := []string{"\"a\xffb\"", "\"a\xfeb\"", "\"\xed\xa0\x80\"", `"a\ud800b"`, `"\udc00"`, `"\ud800\u0041"`}
	eventFields := []string{"schema", "event_id", "ts", "app_id", "flow", "phone", "ip", "carrier", "platform", "device_id", "outcome", "error_code", "token_digest", "ex_id", "decision_id"}
	for _, raw := range bad {
		for _, field := range eventFields {
			_, err := DecodeEvent(withRaw(t, eventJSON(t, nil), field, raw))
			fe, ok := AsFieldError(err)
			if !ok || fe.Field != field || !strings.Contains(fe.Reason, "UTF-8") && !strings.Contains(fe.Reason, "surrogate") {
				t.Errorf("event %s=%s: %v, want an error about %s's text", field, raw, err, field)
			}
		}
		for _, field := range []string{"phone", "ip", "carrier", "app_id", "flow", "platform", "device_id", "token_digest", "ex_id"} {
			_, err := DecodeCheckRequest(withRaw(t, checkDoc, field, raw))
			if fe, ok := AsFieldError(err); !ok || fe.Field != field {
				t.Errorf("check %s=%s: %v, want an error about %s", field, raw, err, field)
			}
		}
	}
	// In a member name, and in the value of a member a newer minor version may add.
	_, err := DecodeCheckRequest([]byte("{\"ex\xffid\":\"x\",\"phone\":\"13812348000\",\"ip\":\"1.2.3.4\",\"app_id\":\"a\"}"))
	if err == nil || err.Error() != `member name "ex\xffid" is not valid UTF-8` {
		t.Errorf("invalid member name: %v", err)
	}
	_, err = DecodeEvent(withRaw(t, eventJSON(t, map[string]any{"schema": "1.1"}), "future", "{\"x\":\"\xff\"}"))
	if err == nil || err.Error() != "future: is not valid UTF-8" {
		t.Errorf("invalid text in an unknown member: %v", err)
	}
	// Valid escapes still decode.
	ev, err := DecodeEvent(eventJSON(t, map[string]any{"ex_id": json.RawMessage(`"\ud83d\ude00\u00e9\"\\\/\b"`)}))
	if err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("\\b is a control character: %+v %v", ev, err)
	}
	ev, err = DecodeEvent(eventJSON(t, map[string]any{"ex_id": json.RawMessage(`"\ud83d\ude00\u00e9\"\\\/"`)}))
	if err != nil || ev.ExID != `😀é"\/` {
		t.Errorf("escapes: %q %v", ev.ExID, err)
	}
}

// phoneWritings are one number as callers write it.
var phoneWritings = []string{
	"13812348000", "+8613812348000", "8613812348000", "+86 138 1234 8000", "86-138-1234-8000",
	"0086 13812348000", "tel:13812348000", "(138)12348000", "138.1234.8000", "１３８１２３４８０００",
}

func TestPhoneInFreeTextIsRefused(t *testing.T) {
	for _, p := range phoneWritings {
		for _, v := range []string{p, "user-" + p, p + "-1741944413589", "手机" + p} {
			for _, field := range []string{"event_id", "app_id", "device_id", "error_code", "ex_id"} {
				if field == "error_code" && len(v) > MaxErrorCodeLen || field == "app_id" && len(v) > MaxAppIDLen {
					continue // refused for their length first
				}
				_, err := DecodeEvent(eventJSON(t, map[string]any{field: v}))
				want := field + ": looks like it contains a mobile phone number; send an opaque id (riskflow never stores phone numbers in plaintext)"
				if err == nil || err.Error() != want {
					t.Errorf("event %s=%q: %v", field, v, err)
				}
			}
			for _, field := range []string{"app_id", "device_id", "ex_id"} {
				if field == "app_id" && len(v) > MaxAppIDLen {
					continue
				}
				b, _ := json.Marshal(map[string]string{"phone": "13812348000", "ip": "1.2.3.4", "app_id": "a", field: v})
				if _, err := DecodeCheckRequest(b); err == nil || !strings.HasPrefix(err.Error(), field+": looks like it contains a mobile phone number") {
					t.Errorf("check %s=%q: %v", field, v, err)
				}
			}
		}
	}
	// Identifiers with many digits are not phone numbers.
	for _, v := range []string{"861234567890123", "a3f9e2c113812348000b", "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "order-20250314-000123", "138123480001"} {
		if _, err := DecodeEvent(eventJSON(t, map[string]any{"device_id": v, "ex_id": v})); err != nil {
			t.Errorf("device_id and ex_id %q: %v", v, err)
		}
	}
}

// No error message repeats a phone number, whatever field the caller put it in; a phone field's
// errors repeat nothing of the value at all.
func TestErrorsNeverShowAPhone(t *testing.T) {
	fields := []string{"schema", "event_id", "ts", "app_id", "flow", "phone", "ip", "carrier", "platform", "device_id", "outcome", "error_code", "token_digest", "ex_id", "decision_id"}
	// Not numbers, but a phone field's errors must not show them either.
	for _, p := range []string{"+86 138 1234 8000 x", "1381234800", "138123480001", "+86138-1234-8000", "23812348000"} {
		_, err := DecodeEvent(eventJSON(t, map[string]any{"phone": p}))
		if err == nil || strings.Contains(err.Error(), "1234") || strings.Contains(err.Error(), "8000") {
			t.Errorf("phone=%q: %v", p, err)
		}
	}
	for _, p := range phoneWritings {
		for _, field := range fields {
			_, err := DecodeEvent(eventJSON(t, map[string]any{field: p}))
			if err == nil {
				continue // a phone field with a valid number
			}
			msg := err.Error()
			if mayShowPhone(msg) || strings.Contains(msg, "1234") || strings.Contains(msg, "８０００") {
				t.Errorf("%s=%q: message %q shows the number", field, p, msg)
			}
		}
		// As a member name and inside a ts that is not a string.
		for _, doc := range [][]byte{
			withRaw(t, eventJSON(t, nil), p, "1"),
			withRaw(t, eventJSON(t, nil), "ts", `["`+p+`"]`),
			withRaw(t, checkDoc, p, "1"),
		} {
			_, err1 := DecodeEvent(doc)
			_, err2 := DecodeCheckRequest(doc)
			for _, err := range []error{err1, err2} {
				if err == nil || mayShowPhone(err.Error()) || strings.Contains(err.Error(), "1234") {
					t.Errorf("%s: %v", doc, err)
				}
			}
		}
	}
}

func TestErrorsAreBounded(t *testing.T) {
	huge := strings.Repeat("k", 200_000)
	docs := [][]byte{
		withRaw(t, eventJSON(t, nil), huge, "1"),
		withRaw(t, checkDoc, huge, "1"),
		withRaw(t, checkDoc, "ip", `"`+huge+`"`),
		withRaw(t, eventJSON(t, nil), "ts", `{"`+huge+`":1}`),
		withRaw(t, eventJSON(t, nil), "flow", `"`+strings.Repeat("\\u0001", 10_000)+`"`),
		[]byte(`[` + string(eventJSON(t, nil)) + `,` + string(withRaw(t, eventJSON(t, nil), huge, "1")) + `]`),
	}
	for _, doc := range docs {
		_, err := DecodeEvents(doc)
		if err == nil {
			_, err = DecodeCheckRequest(doc)
		}
		if err == nil {
			t.Fatalf("%.80s… accepted", doc)
		}
		fe, _ := AsFieldError(err)
		if n := len(fe.Field) + len(fe.Reason); n > 300 { // 40 bytes shown, 4 bytes per escaped byte at most
			t.Errorf("%d-byte error for a huge value: %.120s…", n, err)
		}
	}
	// The cap in Error bounds any FieldError, built here or elsewhere.
	long := &FieldError{Field: "x", Reason: strings.Repeat("é", 2000) + "13812348000"}
	if msg := long.Error(); len(msg) > MaxErrorLen || !strings.HasSuffix(msg, "…") || !strings.HasPrefix(msg, "x: éé") {
		t.Errorf("long FieldError: %d bytes, %.40q…", len(msg), msg)
	}
}

// A body that starts with a byte order mark is refused with an error that says so, by every
// decoder of caller input, rather than as an "invalid character 'ï'".
func TestByteOrderMarkIsNamed(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	event := `{"event_id":"e1","ts":"2026-12-01T10:00:00Z","app_id":"a","flow":"one_click_login","phone":"13812345678","ip":"1.2.3.4","outcome":"success"}`
	check := `{"phone":"13812345678","ip":"1.2.3.4","app_id":"a"}`
	decoders := map[string]func(string) error{
		"event":  func(s string) error { _, err := DecodeEvent([]byte(s)); return err },
		"events": func(s string) error { _, err := DecodeEvents([]byte(s)); return err },
		"events array": func(s string) error {
			_, err := DecodeEvents([]byte(strings.Replace(s, "{", "[{", 1) + "]"))
			return err
		},
		"check": func(s string) error { _, err := DecodeCheckRequest([]byte(s)); return err },
	}
	for name, decode := range decoders {
		body := event
		if name == "check" {
			body = check
		}
		if err := decode(body); err != nil {
			t.Fatalf("%s without a BOM: %v", name, err)
		}
		for _, b := range []string{bom + body, " " + bom + body} {
			err := decode(b)
			if err == nil || !strings.Contains(err.Error(), "byte order mark") {
				t.Errorf("%s %q…: %v", name, b[:5], err)
			}
		}
	}
}
