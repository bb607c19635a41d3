package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeEvent checks, for any input, that DecodeEvent never panics; that what it accepts
// marshals back into a document it decodes to the same value; and that what it refuses comes with
// a *FieldError that says why, in valid UTF-8 (messages end up in API responses and logs).
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

	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			fe, ok := AsFieldError(err)
			if !ok {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			if fe.Reason == "" {
				t.Fatalf("FieldError %#v has no reason", fe)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error message is not valid UTF-8: %q", err.Error())
			}
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

var byteLimits = map[string]int{
	"event_id": MaxEventIDLen, "app_id": MaxAppIDLen, "device_id": MaxDeviceIDLen,
	"error_code": MaxErrorCodeLen, "ex_id": MaxExIDLen,
}

// mayDiffer reports whether data touches one of the rules JSON Schema cannot state: a member given
// twice, a value over a byte limit but within it in characters, a ts number not written as a
// plain integer, or a ts string dated in a year at the 2000..2100 bounds.
func mayDiffer(data []byte) bool {
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
			if json.Unmarshal(raw, &s) == nil && len(s) > limit && utf8.RuneCountInString(s) <= limit {
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
