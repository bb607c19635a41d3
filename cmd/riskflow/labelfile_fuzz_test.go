package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/riskflow/riskflow/schemas"
)

var lineOfError = regexp.MustCompile(`^line \d+`)

// FuzzReadLabelFile feeds label files to readLabelFile (label --file), in batches of 2, and to
// schemas.DecodeLabelFile, which reads the same formats whole: both take the same files and find
// the same labels in them, and when both refuse a file at a line they name the same one. Errors
// are safe to show: valid UTF-8, no phone number, no control character but the newlines that
// separate the wrong labels of a file.
//
//	go test -run '^$' -fuzz '^FuzzReadLabelFile$' -fuzztime 5m ./cmd/riskflow
func FuzzReadLabelFile(f *testing.F) {
	good := `{"app_id":"a","event_id":"e-1","label":"fraud"}`
	dec := `{"app_id":"app1","decision_id":"d-9","label":"legit","note":"called the customer"}`
	for _, s := range []string{
		good, good + "\n", "\xef\xbb\xbf" + good + "\r\n" + dec + "\r\n\n",
		"[" + good + "," + dec + "]", "\n[\n  " + good + ",\n  " + dec + "\n]\n",
		"{\n  \"app_id\": \"a\",\n  \"event_id\": \"e-1\",\n\n  \"label\": \"fraud\"\n}\n",
		good + "\n" + `{"app_id":"a","event_id":"13812348000","label":"fraud"}`,
		good + "\n" + `{"app_id":"a","event_id":"e","label":"fraud","APP_ID":"b"}`,
		"[\n" + good + ",\n  42]", "[" + good + "]\n\n" + good, "[]", "  \n ", "x",
		good + "\n" + `{"app_id":"a","event_id":"e","label":"+86 138 1234 8000"}`,
		`{"app_id":"a","event_id":"e","label":"fraud","note":"\u0007\u202e"}` + "\n" + good,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []schemas.Label
		n, err := readLabelFile(strings.NewReader(string(data)), 2, func(b []schemas.Label) error {
			if len(b) > 2 {
				t.Fatalf("a batch of %d labels, batch size 2", len(b))
			}
			got = append(got, b...)
			return nil
		})
		want, werr := schemas.DecodeLabelFile(data)
		if err == nil {
			if n != len(got) {
				t.Fatalf("readLabelFile says %d labels, gave %d", n, len(got))
			}
			if werr != nil {
				t.Fatalf("readLabelFile took %q (%d labels), DecodeLabelFile refuses it: %v", data, len(got), werr)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%q: readLabelFile read %v, DecodeLabelFile %v", data, got, want)
			}
			return
		}
		msg := err.Error()
		switch {
		case !utf8.ValidString(msg):
			t.Fatalf("error message is not valid UTF-8: %q (input %q)", msg, data)
		case strings.ContainsFunc(msg, func(r rune) bool {
			return unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Bidi_Control, r)
		}):
			t.Fatalf("error message holds a control character: %q (input %q)", msg, data)
		case strings.Contains(msg, "\n") && !strings.Contains(msg, "wrong labels, none stored:"):
			t.Fatalf("error message of one line holds a newline: %q (input %q)", msg, data)
		case schemas.MaskPhones(msg) != msg:
			t.Fatalf("error message shows a phone number: %q (input %q)", msg, data)
		}
		if werr == nil {
			t.Fatalf("readLabelFile refuses %q, DecodeLabelFile takes it (%v): %v", data, want, err)
		}
		first := msg // of several wrong labels, the first named
		if _, rest, ok := strings.Cut(msg, "\n  "); ok {
			first = rest
		}
		if w := lineOfError.FindString(werr.Error()); w != "" {
			if g := lineOfError.FindString(first); g != "" && g != w {
				t.Fatalf("%q: readLabelFile's first error is at %s (%q), DecodeLabelFile's at %s (%q)", data, g, first, w, werr)
			}
		}
	})
}
