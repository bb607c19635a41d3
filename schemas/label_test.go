package schemas

import (
	"fmt"
	"strings"
	"testing"
)

func TestDecodeLabels(t *testing.T) {
	ls, err := DecodeLabels([]byte(`[{"app_id":"a","decision_id":"d-1","label":"fraud","note":"farm"},{"app_id":"a","event_id":"e-1","label":"legit"}]`))
	if err != nil || len(ls) != 2 {
		t.Fatalf("%v %v", ls, err)
	}
	if k, id := ls[0].Target(); k != "decision" || id != "d-1" {
		t.Errorf("target %s %s", k, id)
	}
	if k, id := ls[1].Target(); k != "event" || id != "e-1" {
		t.Errorf("target %s %s", k, id)
	}
	for body, field := range map[string]string{
		`{"app_id":"a","label":"fraud"}`:                                                          "decision_id",
		`{"app_id":"a","event_id":"e","decision_id":"d","label":"fraud"}`:                         "decision_id",
		`{"app_id":"a","event_id":"e","label":"maybe"}`:                                           "label",
		`{"event_id":"e","label":"fraud"}`:                                                        "app_id",
		`[{"app_id":"a","event_id":"e","label":"fraud"},{"app_id":"a"}]`:                          "[1].decision_id",
		`{"app_id":"a","event_id":"13812348000","label":"fraud"}`:                                 "event_id",
		`{"app_id":"a","event_id":"e","label":"fraud","labeled_by":"me"}`:                         "labeled_by",
		`{"app_id":"a","event_id":"e","label":"fraud","note":"` + strings.Repeat("x", 513) + `"}`: "note",
	} {
		_, err := DecodeLabels([]byte(body))
		fe, ok := AsFieldError(err)
		if !ok || fe.Field != field {
			t.Errorf("%s: %v, want an error about %q", body, err, field)
		}
		if err != nil && strings.Contains(err.Error(), "13812348000") {
			t.Errorf("error shows the number: %v", err)
		}
	}
	// The message reads as "<field>: <what is wrong>".
	for body, want := range map[string]string{
		`{"app_id":"a","label":"fraud"}`:                                  "decision_id: is required, or event_id",
		`{"app_id":"a","event_id":"e","decision_id":"d","label":"fraud"}`: "decision_id: is set together with event_id",
	} {
		if _, err := DecodeLabels([]byte(body)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	// A stray ']' or '}' after the value is data after it too (json.Decoder.More passes it), and
	// the member names of such a text are still checked exactly ("App_id" is not app_id).
	for _, body := range []string{``, `[]`, `{"app_id":"a","event_id":"e","label":"fraud"} {}`,
		`[{"app_id":"a","event_id":"e","label":"fraud"}]}`, `[{"app_id":"a","event_id":"e","label":"fraud"}]]`,
		`{"app_id":"a","event_id":"e","label":"fraud"}}`, `[{"App_id":"0","event_id":"0","lABel":"fraud"}]}`} {
		if _, err := DecodeLabels([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

// What encoding/json passes silently is refused, naming the member: a byte that is not UTF-8 or
// half a surrogate pair (stored as U+FFFD, two distinct ids would become one) and a member given
// twice (the last app_id would win).
func TestDecodeLabelsRefusesBadTextAndRepeatedMembers(t *testing.T) {
	for body, want := range map[string]string{
		"{\"app_id\":\"a\",\"event_id\":\"x\xff\",\"label\":\"fraud\"}":                                       "event_id: is not valid UTF-8",
		"[{\"app_id\":\"a\",\"event_id\":\"e\",\"label\":\"fraud\",\"note\":\"a\xc0\xafb\"}]":                 "[0].note: is not valid UTF-8",
		`{"app_id":"a","event_id":"e","label":"fraud","note":"sur \ud800 "}`:                                  "note: holds an unpaired UTF-16 surrogate",
		`[{"app_id":"a","event_id":"e","label":"fraud"},{"app_id":"a","event_id":"e\udc00","label":"fraud"}]`: "[1].event_id: holds an unpaired UTF-16 surrogate",
		`{"app_id":"a","app_id":"b","event_id":"e","label":"fraud"}`:                                          "app_id: appears more than once",
		`[{"app_id":"a","event_id":"e","label":"fraud","label":"legit"}]`:                                     "[0].label: appears more than once",
		`{"app_id":"a","event_id":"e","label":"fraud","13812348000":1,"13812348000":2}`:                       `"<phone>": appears more than once`,
	} {
		_, err := DecodeLabels([]byte(body))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
		if _, ok := AsFieldError(err); !ok {
			t.Errorf("%q: %v is not a *FieldError", body, err)
		}
	}
	// An unknown member is named as the field, short and with a number masked.
	for body, want := range map[string]string{
		`{"app_id":"a","event_id":"e","label":"fraud","colour":1}`:                            "colour: unknown field",
		`{"app_id":"a","event_id":"e","label":"fraud","` + strings.Repeat("x", 3000) + `":1}`: "unknown field",
		`[{"app_id":"a","event_id":"e","label":"fraud","tel 139 1234 5678":1}]`:               `"tel <phone>": unknown field`,
	} {
		_, err := DecodeLabels([]byte(body))
		fe, ok := AsFieldError(err)
		if !ok || !strings.HasSuffix(err.Error(), want) || len(err.Error()) > 200 || strings.Contains(err.Error(), "5678") || fe.Field == "" {
			t.Errorf("%.80q: %v, want a short error ending %q naming the member", body, err, want)
		}
	}
	// A surrogate pair written as escapes is one character, and fine.
	if ls, err := DecodeLabels([]byte(`{"app_id":"a","event_id":"e","label":"fraud","note":"\ud83d\ude00"}`)); err != nil || ls[0].Note != "😀" {
		t.Errorf("a paired surrogate escape: %v %v", ls, err)
	}
}

func TestCheckJSONText(t *testing.T) {
	for doc, want := range map[string]string{
		`{"a":{"b":[1,{"c":"\udfff"}]}}`: "a.b[1].c: holds an unpaired UTF-16 surrogate",
		`{"a":[{"x":1},{"x":1,"x":2}]}`:  "a[1].x: appears more than once",
		`{"a\u0062":1,"ab":2}`:           "ab: appears more than once",
		"[\"ok\",\"\xfe\"]":              "[1]: is not valid UTF-8",
		"{\"k\xff\":1}":                  "a member name is not valid UTF-8",
	} {
		if err := CheckJSONText([]byte(doc)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
	// Valid documents, and documents that are not JSON (the decoder reports those), pass.
	for _, doc := range []string{``, `{}`, `[]`, `{"a":"b","c":["d",{"a":1}],"e":null}`, `{"a":`, `{"a":1,}`, `"x"`, strings.Repeat("[", 20000)} {
		if err := CheckJSONText([]byte(doc)); err != nil {
			t.Errorf("%q: %v", doc, err)
		}
	}
}

// A labels file may be JSON lines — what ClickHouse's FORMAT JSONEachRow writes when an analyst
// selects the decisions to label — besides one object or an array; a byte order mark (a file saved
// by a Windows editor) is skipped. They were refused ("invalid JSON: data after the labels").
func TestDecodeLabelFile(t *testing.T) {
	lines := "\xef\xbb\xbf{\"app_id\":\"a\",\"decision_id\":\"d-1\",\"label\":\"fraud\"}\r\n\n{\"app_id\":\"a\",\"event_id\":\"e-1\",\"label\":\"legit\",\"note\":\"猫池\"}\n"
	ls, err := DecodeLabelFile([]byte(lines))
	if err != nil || len(ls) != 2 || ls[0].DecisionID != "d-1" || ls[1].EventID != "e-1" || ls[1].Note != "猫池" {
		t.Fatalf("JSON lines: %+v %v", ls, err)
	}
	for _, body := range []string{`{"app_id":"a","event_id":"e","label":"fraud"}`,
		"{\n  \"app_id\": \"a\",\n  \"event_id\": \"e\",\n  \"label\": \"fraud\"\n}\n", // pretty-printed, one object
		"[\n{\"app_id\":\"a\",\"event_id\":\"e\",\"label\":\"fraud\"},\n{\"app_id\":\"a\",\"event_id\":\"f\",\"label\":\"legit\"}\n]"} {
		if _, err := DecodeLabelFile([]byte(body)); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
	for body, want := range map[string]string{
		"{\"app_id\":\"a\",\"event_id\":\"e\",\"label\":\"fraud\"}\n{\"app_id\":\"a\",\"event_id\":\"f\",\"label\":\"spam\"}": `line 2: label: "spam" is not fraud or legit`,
		"{\"app_id\":\"a\",\"event_id\":\"e\",\"label\":\"fraud\"}\n[]":                                                       "line 2: expected one label object per line",
		"{\"app_id\":\"a\",\"event_id\":\"e\",\"label\":\"fraud\"}\n{\"app_id\":\"a\",\"event_id\":\"13812348000\"}":          "line 2: event_id: looks like it contains a mobile phone number",
	} {
		_, err := DecodeLabelFile([]byte(body))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// Every wrong label of an array is named, not the first alone (POST /v1/admin/labels answered
// "[1].label: …" and the caller found [2]'s mistake on the next try): the first is the error's
// field, the others follow in its reason, 20 at most and then how many more.
func TestDecodeLabelsNamesEveryWrongLabel(t *testing.T) {
	_, err := DecodeLabels([]byte(`[{"app_id":"a","event_id":"e1","label":"fraud"},{"app_id":"a","event_id":"e2","label":"frad"},` +
		`{"app_id":"a","event_id":"e3","label":"legit","note":"+86 139 0000 1111"},{"app_id":"a","label":"legit"}]`))
	fe, ok := AsFieldError(err)
	if !ok || fe.Field != "[1].label" || fe.Reason != `"frad" is not fraud or legit; `+
		`[2].note: looks like it contains a mobile phone number; send an opaque id (riskflow never stores phone numbers in plaintext); `+
		`[3].decision_id: is required, or event_id: the label marks a decision or an event` {
		t.Errorf("%#v", err)
	}
	var many []string
	for i := range 30 {
		many = append(many, fmt.Sprintf(`{"app_id":"a","event_id":"e%d","label":"x"}`, i))
	}
	_, err = DecodeLabels([]byte("[" + strings.Join(many, ",") + "]"))
	if fe, ok := AsFieldError(err); !ok || fe.Field != "[0].label" || !strings.Contains(fe.Reason, "; [19].label: ") ||
		strings.Contains(fe.Reason, "[20]") || !strings.HasSuffix(fe.Reason, "; and 10 more wrong labels") {
		t.Errorf("30 wrong labels: %v", err)
	}
}

// A member of the wrong JSON type in an array of labels is named with the label's index, as every
// other wrong member is: encoding/json reports only the member's name, so that a number sent as
// the decision_id of the 58th label of a batch read "decision_id: must be a string" — the first
// label, to anyone correcting it.
func TestDecodeLabelsNamesTheLabelOfAWrongType(t *testing.T) {
	ok := `{"app_id":"a","event_id":"e","label":"fraud"}`
	for body, want := range map[string]string{
		`[` + ok + `,{"app_id":"a","decision_id":5,"label":"fraud"}]`:            `[1].decision_id: must be a string, got number`,
		`[` + ok + `,` + ok + `,{"app_id":true,"event_id":"e","label":"fraud"}]`: `[2].app_id: must be a string, got bool`,
		`[` + ok + `,7]`:  `[1]: expected a JSON object, got number`,
		`[` + ok + `,[]]`: `[1]: expected a JSON object, got array`,
		`{"app_id":"a","decision_id":5,"label":"fraud"}`: `decision_id: must be a string, got number`,
	} {
		_, err := DecodeLabels([]byte(body))
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// A label's text that stops being JSON inside a member's value names the label and the member, as
// an event's does: a tab pasted into one note of a batch named only a byte offset. Between
// labels, or after a complete one, it names none.
func TestDecodeLabelsNamesTheMemberOfASyntaxError(t *testing.T) {
	ok := `{"app_id":"a","event_id":"e","label":"fraud"}`
	for body, want := range map[string]string{
		`[` + ok + `,{"app_id":"a","event_id":"e","label":"fraud","note":"x` + "\t" + `y"}]`: `[1].note: invalid JSON at byte 102: invalid character '\t' in string literal`,
		`{"app_id":"a","event_id":"e","label":fraud}`:                                        `label: invalid JSON at byte 39: invalid character 'r' in literal false (expecting 'a')`,
		`{"app_id":"a","event_id":"e","note":"cut`:                                           `note: invalid JSON: unexpected end of input`,
		`[` + ok + ` ` + ok + `]`:                                                            `invalid JSON at byte 48: invalid character '{' after array element`,
		`{"app_id":"a","event_id":"e","label":"fraud"`:                                       `invalid JSON: unexpected end of input`,
	} {
		_, err := DecodeLabels([]byte(body))
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// A label of an array with a member of the wrong type or an unknown member is named with the
// array's other wrong labels, as riskflow label --file names them: POST /v1/admin/labels answered
// a note sent as a number, or a misspelt member, alone, and the misspelt label beside it on the
// next try.
func TestDecodeLabelsNamesEveryWrongLabelWhateverItsMistake(t *testing.T) {
	_, err := DecodeLabels([]byte(`[{"app_id":"a","decision_id":"d","label":"frad"},{"app_id":"a","event_id":"e","label":"fraud","note":3},` +
		`{"app_id":"a","event_id":"e","label":"fraud","nte":"x"},7,{"app_id":"a","event_id":"e","label":"legit"}]`))
	fe, ok := AsFieldError(err)
	if !ok || fe.Field != "[0].label" || fe.Reason != `"frad" is not fraud or legit; [1].note: must be a string, got number; `+
		`[2].nte: unknown field; [3]: expected a JSON object, got number` {
		t.Errorf("%#v", err)
	}
	// One object is still refused for its first mistake, named without an index.
	if _, err := DecodeLabels([]byte(`{"app_id":"a","event_id":"e","label":"frad","nte":"x"}`)); err == nil || err.Error() != "nte: unknown field" {
		t.Errorf("one object: %v", err)
	}
}
