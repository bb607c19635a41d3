package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
)

// A Chinese app, event or device id keeps lookup's columns in line: every row's number starts in
// the terminal column where the header's does (text/tabwriter counted 应用甲 as three columns,
// and the rest of its row came two columns to the right for each such character).
func TestLookupTableAlignsWideCharacters(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	l := lookupResult{LiveSkipped: true, span: time.Hour, limit: 20,
		Attempts: []chsink.Attempt{
			{TS: at, AppID: "app-b", EventID: "ev-2", PhoneMasked: "1381234****", IP: "203.0.113.7", DeviceID: "设备甲", Outcome: "success"},
			{TS: at, AppID: "应用甲", EventID: "事件-一", PhoneMasked: "1381234****", IP: "203.0.113.7", DeviceID: "ｄｅｖ１", Outcome: "success"},
			{TS: at, AppID: "café", EventID: "e\u0301vt", PhoneMasked: "1381234****", IP: "203.0.113.7", DeviceID: "📱-1", Outcome: "fail", ErrorCode: "103911"},
		},
	}
	var out bytes.Buffer
	l.write(&out)
	var col []int // the terminal column of "1381234****" (and of the header's "number"), then of "success"/"fail"
	for _, line := range strings.Split(out.String(), "\n") {
		i := strings.Index(line, "1381234****")
		if i < 0 {
			i = strings.Index(line, "number")
		}
		j := max(strings.Index(line, "success"), strings.Index(line, "fail"), strings.Index(line, "outcome"))
		if i < 0 || j < 0 || !strings.HasPrefix(line, "  ") {
			continue
		}
		col = append(col, displayWidth(line[:i]), displayWidth(line[:j]))
	}
	if len(col) != 8 {
		t.Fatalf("%d rows found, want the header and 3:\n%s", len(col)/2, out.String())
	}
	for k := 2; k < len(col); k++ {
		if col[k] != col[k%2] {
			t.Errorf("columns out of line (terminal columns %v):\n%s", col, out.String())
			break
		}
	}
}

// Without wide characters, columns writes what text/tabwriter wrote, byte for byte: lookup's
// tables look as they did.
func TestColumnsIsTabwriterForNarrowText(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"", "a", "app-1", "2026-12-06T13:00:00Z", "1381234****", "µs", "été", "x y"}
	for n := range 2000 {
		var text strings.Builder
		for range rng.IntN(8) {
			for range rng.IntN(6) {
				text.WriteString(words[rng.IntN(len(words))])
				text.WriteByte('\t')
			}
			text.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(10) > 0 {
				text.WriteByte('\n')
			}
		}
		var want, got bytes.Buffer
		tw := tabwriter.NewWriter(&want, 2, 4, 2, ' ', 0)
		fmt.Fprint(tw, text.String())
		tw.Flush()
		c := newColumns(&got)
		fmt.Fprint(c, text.String())
		c.Flush()
		if got.String() != want.String() {
			t.Fatalf("case %d %q:\ncolumns:\n%s\ntabwriter:\n%s", n, text.String(), got.String(), want.String())
		}
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{"": 0, "app-1": 5, "应用甲": 6, "ｄｅｖ": 6, "e\u0301": 1, "a\u200bb": 2, "µs": 2, "한국": 4, "📱": 2, "ﾊﾝｶｸ": 4} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}
