package main

import (
	"testing"
	"time"
)

// FuzzTimeArgs feeds time arguments to lookup's --since/--until (timeFlag) and backtest's
// --from/--to (parseWhen). Whatever the argument, neither panics; their errors are safe to print;
// a span lookup takes is not negative (a point after now) and reads back from its String as
// the same span; and what both take they read as the same point (-1h is an hour back in both).
//
//	go test -run '^$' -fuzz '^FuzzTimeArgs$' -fuzztime 5m ./cmd/riskflow
func FuzzTimeArgs(f *testing.F) {
	for _, s := range []string{"now", "24h", "90m", "7d", "1d12h", "2026-12-06", "2026-12-06T10:00:00Z",
		"2026-12-06T18:00:00+08:00", "2026-12-06T10:00:00.5Z", "1w", "-5h", "0s", "65535d2562047h", "13812348000",
		"+86 138 1234 8000", "1h\x1b[31m", "9223372036854775807ns", "0d", "d", "1.5h", "-"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		var tf timeFlag
		ferr := tf.Set(s)
		if ferr != nil {
			checkConfigError(t, []byte(s), ferr.Error())
		} else if tf.at.IsZero() {
			if tf.span < 0 {
				// -1h is an hour back, as 1h is; a negative span is a point after now (--5h),
				// or a span that wrapped around.
				t.Fatalf("--since %q: a span of %s, after now", s, tf.span)
			}
			var again timeFlag
			if err := again.Set(tf.String()); err != nil || again.span != tf.span || !again.at.IsZero() {
				t.Fatalf("--since %q is %s, shown %q, read back as %s (%v)", s, tf.span, tf.String(), again.span, err)
			}
		}
		w, werr := parseWhen(s, now)
		if werr != nil {
			checkConfigError(t, []byte(s), werr.Error())
			return
		}
		if ferr == nil {
			if first := time.Unix(1, 0); w.Before(first) {
				w = first
			}
			if got := tf.resolve(now); !got.Equal(w) {
				t.Fatalf("%q: lookup --since reads %s, backtest --from %s", s, got, w)
			}
		}
	})
}
