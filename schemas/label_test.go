package schemas

import (
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
		`{"app_id":"a","event_id":"e","label":"fraud","labeled_by":"me"}`:                         "",
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
	for _, body := range []string{``, `[]`, `{"app_id":"a","event_id":"e","label":"fraud"} {}`} {
		if _, err := DecodeLabels([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}
