package chsink

import (
	"encoding/json"
	"slices"
	"testing"
)

// riskflow lookup --json prints attempts and decisions under their ClickHouse column names, as the
// live part and every other riskflow JSON does (it printed Go field names: "AppID", "LatencyUS").
func TestLookupJSONNamesAreColumns(t *testing.T) {
	for _, c := range []struct {
		v       any
		columns []string
	}{
		{Attempt{}, append(slices.Clone(verifyEventsColumns), "score", "tags", "rules_version")},
		{StoredDecision{}, riskDecisionsColumns},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			if !slices.Contains(c.columns, k) {
				t.Errorf("%T: %q is not a column (%v)", c.v, k, c.columns)
			}
		}
	}
}
