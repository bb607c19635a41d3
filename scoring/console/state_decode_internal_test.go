package console

import (
	"strings"
	"testing"
)

// A promotion request or a backtest in the console's working state that does not decode (another
// build's, or one written by hand) is named by its member and what it must be, as the event
// decoder words it, not with encoding/json's Go-internal text ("cannot unmarshal string into Go
// struct field pendingPromotion.Rollback of type bool", "Time.UnmarshalJSON: …"), which the
// console logs and shows.
func TestUnreadableStateItemsNameTheMember(t *testing.T) {
	for body, want := range map[string]string{
		`{"Rollback":"yes"}`: "Rollback: must be a boolean, got string",
		`{"At":5}`:           "At: must be an RFC 3339 time string, got number",
		`[1]`:                "expected a JSON object, got array",
	} {
		_, err := decodePromotion(Item{ID: "p1", Body: []byte(body)})
		if err == nil || !strings.Contains(err.Error(), "promotion request p1: "+want) || strings.Contains(err.Error(), "Go ") {
			t.Errorf("promotion request %s: %v, want %q", body, err, want)
		}
	}
	for body, want := range map[string]string{
		`{"hours":"24"}`:      "hours: must be a number, got string",
		`{"started":"today"}`: `started: "today" is not an RFC 3339 time`,
		`{"report":[]}`:       "report: must be an object, got array",
	} {
		_, err := (&Server{}).storedView(Item{ID: "b1", Body: []byte(body)})
		if err == nil || !strings.Contains(err.Error(), "backtest b1: "+want) || strings.Contains(err.Error(), "Go ") {
			t.Errorf("backtest %s: %v, want %q", body, err, want)
		}
	}
}
