package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// The examples in testdata/events:
//
//   - valid/NAME.json: accepted by DecodeEvent and by verify_event.schema.json;
//   - invalid/FIELD--WHY.json: refused by both, and DecodeEvent's *FieldError names FIELD
//     ("_doc" stands for the document itself, Field ""); the schema's error must concern FIELD too;
//   - differences/NAME.json: the documented cases where JSON Schema cannot state the Go rule. Each
//     one is listed in knownDifferences with what each side does, so a change on either side shows.

const (
	eventSchemaFile = "verify_event.schema.json"
	checkSchemaFile = "risk_check.schema.json"
	eventsDir       = "testdata/events"
)

// compileSchema compiles one of the schema files with format assertions on (draft 2020-12 leaves
// them off by default, and ipv4, ipv6 and date-time carry part of the contract).
func compileSchema(t testing.TB, file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return sch
}

// schemaVerdict validates data against sch. A document that is not exactly one JSON value is
// refused too: that is what any JSON Schema validator does before it looks at the schema.
func schemaVerdict(sch *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}

// blamedFields lists the top-level members a schema validation error is about: those missing for
// `required`, refused by `propertyNames`, or holding a value some keyword refused.
func blamedFields(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			out = append(out, k.Missing...)
		case *kind.PropertyNames:
			out = append(out, k.Property)
		}
		if len(e.InstanceLocation) > 0 {
			out = append(out, e.InstanceLocation[0])
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

func readExamples(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(eventsDir, dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = data
	}
	return out
}

// expectedField reads FIELD from an invalid example's name FIELD--WHY.
func expectedField(t testing.TB, name string) string {
	t.Helper()
	field, _, ok := strings.Cut(name, "--")
	if !ok {
		t.Fatalf("invalid example %q is not named FIELD--WHY", name)
	}
	if field == "_doc" {
		return ""
	}
	return field
}

func TestEventSchemaAgreesWithDecoder(t *testing.T) {
	sch := compileSchema(t, eventSchemaFile)

	valid := readExamples(t, "valid")
	if len(valid) < 15 {
		t.Errorf("only %d valid examples", len(valid))
	}
	for name, data := range valid {
		t.Run("valid/"+name, func(t *testing.T) {
			if err := schemaVerdict(sch, data); err != nil {
				t.Errorf("schema refuses it: %v", err)
			}
			ev, err := DecodeEvent(data)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			// What the Go side emits is a valid v1 document too.
			out, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := schemaVerdict(sch, out); err != nil {
				t.Errorf("schema refuses the re-marshalled event %s: %v", out, err)
			}
		})
	}

	invalid := readExamples(t, "invalid")
	if len(invalid) < 30 {
		t.Errorf("only %d invalid examples", len(invalid))
	}
	for name, data := range invalid {
		t.Run("invalid/"+name, func(t *testing.T) {
			field := expectedField(t, name)
			_, err := DecodeEvent(data)
			fe, ok := AsFieldError(err)
			switch {
			case err == nil:
				t.Errorf("DecodeEvent accepts it")
			case !ok:
				t.Errorf("DecodeEvent error %v (%T) is not a *FieldError", err, err)
			case fe.Field != field || fe.Reason == "":
				t.Errorf("DecodeEvent error %q names field %q, want %q", err, fe.Field, field)
			}
			serr := schemaVerdict(sch, data)
			if serr == nil {
				t.Fatalf("schema accepts it")
			}
			if blamed := blamedFields(serr); field != "" && !slices.Contains(blamed, field) {
				t.Errorf("schema error is about %q, not %q: %v", blamed, field, serr)
			}
		})
	}
}

// knownDifferences are the documented places (see $comment in verify_event.schema.json) where
// the schema cannot state the Go rule. goField is the field DecodeEvent refuses, "" if it accepts.
var knownDifferences = map[string]struct {
	goField       string
	schemaAccepts bool
}{
	// Length limits count bytes in Go and characters in JSON Schema.
	"event_id-30-chinese-characters": {goField: "event_id", schemaAccepts: true},
	"device_id-43-emoji":             {goField: "device_id", schemaAccepts: true},
	// JSON Schema sees numbers, not how they are written.
	"ts-exponent":          {goField: "ts", schemaAccepts: true},
	"ts-integral-fraction": {goField: "ts", schemaAccepts: true},
	// The 2000..2100 bound applies in UTC; the pattern can only look at the local date.
	"ts-2000-local-1999-utc":           {goField: "ts", schemaAccepts: true},
	"ts-1999-local-2000-utc":           {goField: "", schemaAccepts: false},
	"ts-2100-01-01-after-midnight-utc": {goField: "ts", schemaAccepts: true},
	// A validator sees only one of the values of a member given twice.
	"phone-twice": {goField: "phone", schemaAccepts: true},
	// Text that is not valid Unicode: validators parse it into U+FFFD before they look.
	"event_id-invalid-utf8":    {goField: "event_id", schemaAccepts: true},
	"ex_id-unpaired-surrogate": {goField: "ex_id", schemaAccepts: true},
	// A phone number inside a free-text field (ContainsPhone): no pattern states it.
	"device_id-phone-number":   {goField: "device_id", schemaAccepts: true},
	"ex_id-phone-inside-id":    {goField: "ex_id", schemaAccepts: true},
	"decision_id-phone-number": {goField: "decision_id", schemaAccepts: true},
	"event_id-phone-and-time":  {goField: "event_id", schemaAccepts: true},
	"error_code-phone-number":  {goField: "error_code", schemaAccepts: true},
}

func TestEventSchemaKnownDifferences(t *testing.T) {
	sch := compileSchema(t, eventSchemaFile)
	examples := readExamples(t, "differences")
	for name := range knownDifferences {
		if _, ok := examples[name]; !ok {
			t.Errorf("knownDifferences lists %q, which is not in %s/differences", name, eventsDir)
		}
	}
	for name, data := range examples {
		t.Run(name, func(t *testing.T) {
			want, ok := knownDifferences[name]
			if !ok {
				t.Fatalf("not listed in knownDifferences")
			}
			_, err := DecodeEvent(data)
			switch fe, _ := AsFieldError(err); {
			case want.goField == "" && err != nil:
				t.Errorf("DecodeEvent: %v, want it accepted", err)
			case want.goField != "" && (fe == nil || fe.Field != want.goField):
				t.Errorf("DecodeEvent: %v, want an error about %s", err, want.goField)
			}
			serr := schemaVerdict(sch, data)
			if (serr == nil) != want.schemaAccepts {
				t.Errorf("schema verdict %v, want accepted=%v", serr, want.schemaAccepts)
			}
		})
	}
}

// TestEventSchemaMatchesGoConstants keeps the enums and limits in the schema file in step with
// the Go declarations.
func TestEventSchemaMatchesGoConstants(t *testing.T) {
	raw, err := os.ReadFile(eventSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Enum      []any `json:"enum"`
			MaxLength *int  `json:"maxLength"`
		} `json:"properties"`
		Else struct {
			PropertyNames struct {
				Enum []string `json:"enum"`
			} `json:"propertyNames"`
		} `json:"else"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}

	enumOf := func(field string) []string {
		var out []string
		for _, v := range doc.Properties[field].Enum {
			if s, ok := v.(string); ok { // null is listed for optional fields; Go reads it as ""
				out = append(out, s)
			}
		}
		sort.Strings(out)
		return out
	}
	sorted := func(s []string) []string {
		s = slices.Clone(s)
		sort.Strings(s)
		return s
	}
	for field, goList := range map[string][]string{
		"flow": flows, "outcome": outcomes, "carrier": carriers, "platform": platforms,
	} {
		if got, want := enumOf(field), sorted(goList); !slices.Equal(got, want) {
			t.Errorf("%s: schema enum %q, Go accepts %q", field, got, want)
		}
	}

	for field, limit := range map[string]int{
		"event_id": MaxEventIDLen, "app_id": MaxAppIDLen, "device_id": MaxDeviceIDLen,
		"error_code": MaxErrorCodeLen, "ex_id": MaxExIDLen, "decision_id": MaxDecisionIDLen,
	} {
		if got := doc.Properties[field].MaxLength; got == nil || *got != limit {
			t.Errorf("%s: schema maxLength %v, Go limit %d", field, got, limit)
		}
	}

	// Every member the decoder knows, and nothing else, is a property and an allowed name.
	names := eventMembers.names
	var props []string
	for name := range doc.Properties {
		props = append(props, name)
	}
	if got, want := sorted(props), sorted(names); !slices.Equal(got, want) {
		t.Errorf("schema properties %q, Go members %q", got, want)
	}
	if got, want := sorted(doc.Else.PropertyNames.Enum), sorted(names); !slices.Equal(got, want) {
		t.Errorf("schema propertyNames %q, Go members %q", got, want)
	}
	wantRequired := []string{"app_id", "event_id", "flow", "ip", "outcome", "phone", "ts"}
	if got := sorted(doc.Required); !slices.Equal(got, wantRequired) {
		t.Errorf("schema requires %q, want %q", got, wantRequired)
	}
}

func TestRiskCheckSchema(t *testing.T) {
	sch := compileSchema(t, checkSchemaFile)
	cases := []struct {
		name  string
		rc    RiskCheck
		valid bool
	}{
		{"pass with nil tags and detail", RiskCheck{Content: "success"}, true},
		{"pass with empty tags and detail", RiskCheck{Content: "success", Tags: []string{}, Detail: map[string]TagDetail{}}, true},
		{"step up", RiskCheck{
			Content: "success", Score: ScoreStepUp, Tags: []string{"ip_many_phones"},
			Detail: map[string]TagDetail{"ip_many_phones": {Score: ScoreStepUp, Reason: "38 phones from this IP in 1h"}},
			ID:     "rc-01HQ3Z9X", ExID: "1234566", RulesVersion: "2025-03-14.3",
		}, true},
		{"block with two tags", RiskCheck{
			Content: "success", Score: ScoreBlock, Tags: []string{"token_replay", "ip_idc"},
			Detail: map[string]TagDetail{
				"token_replay": {Score: ScoreBlock, Reason: "loginToken seen 3 times in 10m"},
				"ip_idc":       {Score: ScoreObserve, Reason: "IP belongs to AS4134 data centre"},
			},
		}, true},
		{"observe", RiskCheck{Content: "success", Score: ScoreObserve, Tags: []string{"new_device"},
			Detail: map[string]TagDetail{"new_device": {Score: ScoreObserve}}}, true},
		{"score off the levels", RiskCheck{Content: "success", Score: 450}, false},
		{"tag score off the levels", RiskCheck{Content: "success", Score: ScoreStepUp, Tags: []string{"x"},
			Detail: map[string]TagDetail{"x": {Score: 601, Reason: "r"}}}, false},
		{"negative score", RiskCheck{Content: "success", Score: -300}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := json.Marshal(c.rc)
			if err != nil {
				t.Fatal(err)
			}
			goValid := ValidScore(c.rc.Score)
			for _, d := range c.rc.Detail {
				goValid = goValid && ValidScore(d.Score)
			}
			if goValid != c.valid {
				t.Errorf("ValidScore says %v, want %v", goValid, c.valid)
			}
			if err := schemaVerdict(sch, data); (err == nil) != c.valid {
				t.Errorf("schema verdict on %s: %v, want valid=%v", data, err, c.valid)
			}
		})
	}

	// nil Tags and Detail are written as [] and {}, as the loginTokenVerify riskCheck has them.
	data, err := json.Marshal(RiskCheck{Content: "success"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"code":0,"content":"success","score":0,"tags":[],"detail":{}}`; string(data) != want {
		t.Errorf("RiskCheck{} marshals as %s, want %s", data, want)
	}

	for name, doc := range map[string]string{
		"the example in DESIGN.md":  `{"code":0,"content":"success","score":600,"tags":["ip_many_phones"],"detail":{"ip_many_phones":{"score":600,"reason":"38 phones from this IP in 1h"}},"id":"c-1","exID":"e-1","rules_version":"v7"}`,
		"the riskCheck of the seed": `{"code":0,"content":"success","score":0,"tags":[],"detail":{}}`,
	} {
		if err := schemaVerdict(sch, []byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, doc := range map[string]string{
		"tags missing":         `{"code":0,"content":"success","score":0,"detail":{}}`,
		"tags null":            `{"code":0,"content":"success","score":0,"tags":null,"detail":{}}`,
		"detail null":          `{"code":0,"content":"success","score":0,"tags":[],"detail":null}`,
		"tag is not a string":  `{"code":0,"content":"success","score":0,"tags":[1],"detail":{}}`,
		"detail without score": `{"code":0,"content":"success","score":0,"tags":[],"detail":{"x":{"reason":"r"}}}`,
		"unknown member":       `{"code":0,"content":"success","score":0,"tags":[],"detail":{},"riskLevel":"low"}`,
		"score as a string":    `{"code":0,"content":"success","score":"0","tags":[],"detail":{}}`,
	} {
		if err := schemaVerdict(sch, []byte(doc)); err == nil {
			t.Errorf("%s: schema accepts %s", name, doc)
		}
	}
}

// TestEventSchemaAgreesOnEdgeValues tries many borderline values, one field at a time, on top of a
// valid event: DecodeEvent and the schema must give the same verdict.
func TestEventSchemaAgreesOnEdgeValues(t *testing.T) {
	sch := compileSchema(t, eventSchemaFile)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	values := map[string][]any{
		"ip": {
			"0.0.0.0", "255.255.255.255", "256.0.0.0", "1.2.3.04", "00.1.2.3", "1.2.3.4.", ".1.2.3.4",
			" 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1.2.3.-0", "-0.1.2.3", "1.2.3.+4", "0x1.2.3.4", "1.2.3.٤",
			"::", "::1", "::ffff:1.2.3.4", "::ffff:01.2.3.4", "::ffff:1.2.3.256", "::1.2.3.4", "64:ff9b::1.2.3.4",
			"1::2::3", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:0:0:0:1:2", "2001:db8::00001",
			"2001:DB8::A", "fe80::1%25eth0", "fe80::1%", "2001:db8::1/64", "[::1]", ":", "", raw("null"), 16909060,
			// Addresses no login comes from, in their spellings, and their neighbours that are fine.
			"127.0.0.1", "127.255.255.254", "126.255.255.255", "128.0.0.1", "169.254.0.1", "169.253.0.1",
			"224.0.0.1", "239.255.255.255", "223.255.255.255", "240.0.0.1", "255.255.255.254", "0.0.0.1",
			"0:0:0:0:0:0:0:1", "0::1", "::0001", "::0:1", "::1:0", "::10", "10::1", "1::", "0:0:0:0:0:0:0:0",
			"::0.0.0.1", "::0.0.0.0", "::0.0.0.2", "::ffff:127.0.0.1", "0:0:0:0:0:ffff:127.1.2.3", "::0:ffff:169.254.9.9",
			"::ffff:224.0.0.1", "::ffff:0.0.0.0", "::ffff:255.255.255.255", "::ffff:7f00:1", "::FFFF:7F00:1",
			"::ffff:a9fe:1", "::ffff:e000:1", "::ffff:0:0", "::ffff:ffff:ffff", "::ffff:ffff:7f00:1",
			"::ffff:0:127.0.0.1", "::ffff:7e00:1", "::ffff:df00:1", "ff02::1", "FF00::", "ff::1", "fe80::1",
			"FEBF::1", "fec0::1", "fe7f::1", "2409:8900::1", "240e::1",
			// 0.0.0.0/8 and 240.0.0.0/4, mapped too, and their neighbours.
			"0.255.255.255", "1.0.0.0", "239.0.0.1", "::ffff:0.255.1.1", "::ffff:240.0.0.1", "::ffff:ff:1",
			"::ffff:00ff:1", "::ffff:0100:1", "::ffff:100:1", "::ffff:f000:1", "::ffff:efff:1", "0:0:0:0:ffff:7f00:1:2",
		},
		"ts": {
			"2025-03-14T09:26:53.Z", "2025-03-14T09:26:53.000000000000000000001Z", "2025-13-01T00:00:00Z",
			"2025-00-01T00:00:00Z", "2025-01-00T00:00:00Z", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z",
			"2025-04-31T00:00:00Z", "2025-03-14T09:60:00Z", "2025-03-14T23:59:59.999999999Z",
			"2025-03-14T09:26:53-23:59", "2025-03-14T09:26:53+23:60", "2025-03-14T09:26:53+00:00",
			"2025-03-14T09:26:53-00:00", "2025-03-14T09:26:53ZZ", "2025-03-14T09:26:53Z ", " 2025-03-14T09:26:53Z",
			"2025-03-14T09:26:53+08:00:00", "2025-03-14T09:26:53+8:00", "2025-03-14T09:26:53.5+08:00",
			"2025-03-14T9:26:53Z", "2025-3-14T09:26:53Z", "20250314T092653Z", "2025-03-14", "09:26:53Z",
			"2025-03-14T09:26:53", "2025-03-14T09:26:53z", "2025-03-14t09:26:53Z", "2025-03-14T09:26:53.123+0800",
			"2001-01-01T00:00:00Z", "2098-12-31T23:59:59Z", "1741944413589",
			raw("946684800000"), raw("946684799999"), raw("4102444800000"), raw("4102444800001"),
			raw("0"), raw("-0"), raw("9223372036854775807"), raw("9223372036854775808"), raw("-946684800000"),
			raw("17419444135890"), raw("[]"), raw("false"),
		},
		"phone": {
			"+86 13812348000", "+8613812348000 ", "+86+8613812348000", "+868613812348000", "861381234800",
			"8613812348000", "86138123480001", "+861401234567890", "+8614012345678901", "14012345678",
			"1501234567890", "1401234567890", "+85213812348000", "008613812348000", "+86", "86", "1", "",
			"+8623812348000", "8623812348000", "10000000000", "19999999999", "1381234800０", "+8813812348000",
		},
		"token_digest": {
			strings.Repeat("aB", 32), strings.Repeat("0", 64), strings.Repeat("f", 63) + "F", strings.Repeat("g", 64),
			strings.Repeat("ａ", 64), strings.Repeat("a", 64) + "\n", " " + strings.Repeat("a", 64), "", raw("null"), raw("0"),
		},
		"schema": {
			"1.0", "1.00", "01", "1.1 ", " 1.1", "1.١", "1.0x", "1.999999999", "1.0000000001", "1.0000000000",
			"1.000000000", "1.01", "1.-1", "2", "0.9", "", raw("null"), raw("true"),
		},
		"carrier":     {"CM", "CU", "CT", "", "cm", "CMCC", " CM", raw("null"), raw("0")},
		"platform":    {"android", "ios", "harmony", "h5", "web", "", "Android", "mini_program", raw("null")},
		"flow":        {"one_click_login", "number_verify", "h5_quick_login", "sms_fallback", "", "one_click_login ", raw("null")},
		"outcome":     {"success", "fail", "", "Success", "failed", raw("null")},
		"event_id":    {"e", strings.Repeat("e", 64), strings.Repeat("e", 65), "\u0085", "tab\tx", "del\x7fx", "a\u2028b", "", raw("null"), raw("1")},
		"app_id":      {"a", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\x1fb", "", raw("null"), raw("{}")},
		"device_id":   {"", strings.Repeat("d", 128), strings.Repeat("d", 129), "d\x00", raw("null"), raw("[]")},
		"error_code":  {"", "103911", "-40101", strings.Repeat("9", 32), strings.Repeat("9", 33), "x\ry", raw("null"), raw("103911")},
		"ex_id":       {"", strings.Repeat("x", 128), strings.Repeat("x", 129), "x\u001fy", "x\u007fy", raw("null"), raw("1.5")},
		"decision_id": {"", "api1-5f3a9c2e-00000000000004d2", strings.Repeat("x", 64), strings.Repeat("x", 65), "x\u001fy", raw("null"), raw("7")},
	}
	for field, vals := range values {
		for _, v := range vals {
			doc := eventJSON(t, map[string]any{field: v})
			if mayDiffer(doc) {
				t.Fatalf("edge value %s=%v falls under a known difference; move it to testdata/events/differences", field, v)
			}
			_, goErr := DecodeEvent(doc)
			schemaErr := schemaVerdict(sch, doc)
			if (goErr == nil) != (schemaErr == nil) {
				t.Errorf("%s=%#v: Go says %v, schema says %v", field, v, goErr, schemaErr)
			}
			if fe, ok := AsFieldError(goErr); ok && fe.Field != field {
				t.Errorf("%s=%#v: Go error %q names another field", field, v, goErr)
			}
		}
	}
}

// The schema's free-text fields refuse a blank value with the characters isBlank counts: the
// pattern's class is built from blankRanges.
func TestSchemaBlankClassIsGos(t *testing.T) {
	var class strings.Builder
	for _, r := range blankRanges {
		class.WriteRune(r[0])
		if r[1] != r[0] {
			class.WriteByte('-')
			class.WriteRune(r[1])
		}
	}
	want := `[\x00-\x1f\x7f]|^[` + class.String() + `]+$`
	data, err := os.ReadFile(eventSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]struct {
			Not struct {
				Pattern string `json:"pattern"`
			} `json:"not"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"event_id", "app_id", "device_id", "error_code", "ex_id", "decision_id"} {
		if got := doc.Properties[f].Not.Pattern; got != want {
			t.Errorf("%s: pattern %q; want %q", f, got, want)
		}
	}
	// Every character of the class, alone or repeated, is blank to both; one visible character
	// among them is not.
	sch := compileSchema(t, eventSchemaFile)
	for _, r := range blankRanges {
		for c := r[0]; c <= r[1]; c++ {
			if c < 0x20 {
				continue // a control character: refused as such
			}
			for _, v := range []string{string(c), strings.Repeat(string(c), 3), string(c) + "x" + string(c)} {
				doc := eventJSON(t, map[string]any{"device_id": v})
				_, goErr := DecodeEvent(doc)
				schemaErr := schemaVerdict(sch, doc)
				blank := !strings.Contains(v, "x")
				if (goErr != nil) != blank || (schemaErr != nil) != blank {
					t.Errorf("device_id %+q: Go %v, schema %v; blank %v", v, goErr, schemaErr, blank)
				}
				if blank && (goErr == nil || !strings.Contains(goErr.Error(), "device_id: is blank")) {
					t.Errorf("device_id %+q: %v", v, goErr)
				}
			}
		}
	}
}
