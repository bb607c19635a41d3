package scoring_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// checkErrorText fails t when msg, an error a caller's input caused, is empty, not valid UTF-8,
// holds a control character or a bidi control (a forged log line, a terminal escape), or shows
// a phone-like number (schemas.MaskPhones would change it).
func checkErrorText(t *testing.T, input []byte, msg string) {
	t.Helper()
	switch {
	case msg == "":
		t.Fatalf("empty error message for %q", input)
	case !utf8.ValidString(msg):
		t.Fatalf("error message is not valid UTF-8: %q (input %q)", msg, input)
	case strings.ContainsFunc(msg, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }):
		t.Fatalf("error message holds a control character: %q (input %q)", msg, input)
	case schemas.MaskPhones(msg) != msg:
		t.Fatalf("error message shows a phone number: %q (input %q)", msg, input)
	}
}

// FuzzParseLists feeds list files to ParseLists (a --lists file at start, the console's lists
// page, every entry of the shared lists topic: pipeline's checkEntry parses one line). Whatever
// the input it returns; an error names the line and is safe to show (checkErrorText); what it
// accepts has one entry per line that holds one, and the same lines parse the same again.
//
//	go test -run '^$' -fuzz '^FuzzParseLists$' -fuzztime 5m ./scoring
func FuzzParseLists(f *testing.F) {
	file, err := os.ReadFile("ruletest/testdata/lists.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file)
	for _, s := range []string{
		"block phone  13800138000\nallow ip 203.0.113.7 # office\nblock ip 198.51.100.0/24\n",
		"block device 5f1c9a00aa\nblock prefix 1700123\nblock phone_hash " + strings.Repeat("9f", 32) + "\n",
		"block ip ::ffff:10.0.0.0/104\nallow ip 64:ff9b::1.2.3.4\nblock ip 2001:db8::1/128\n",
		"block ip 1381:2345:678::1/48\n",
		"block ip 10.1.2.3/8\n",
		"block phone +86 138 1234 8000\n",
		"block device tel:13812348000\n",
		"allow ip fe80::1%eth0\n",
		"block ip 1.2.3.4\x0138123456789\n",
		"block  kind  value\n",
		"deny phone 13800138000\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := scoring.ParseLists(bytes.NewReader(data))
		if err != nil {
			msg := err.Error()
			checkErrorText(t, data, msg)
			if !strings.HasPrefix(msg, "line ") {
				t.Fatalf("error %q names no line (input %q)", msg, data)
			}
			return
		}
		entries := 0
		var kept []string
		for line := range strings.Lines(string(data)) {
			text, _, _ := strings.Cut(line, "#")
			if f := strings.Fields(text); len(f) > 0 {
				entries++
				kept = append(kept, strings.Join(f, " "))
			}
		}
		if l.Len() != entries {
			t.Fatalf("accepted %q with %d entries, but it has %d lines that hold one", data, l.Len(), entries)
		}
		again, err := scoring.ParseLists(strings.NewReader(strings.Join(kept, "\n")))
		if err != nil || again.Len() != l.Len() {
			t.Fatalf("accepted %q, but not its entries one per line (%q): %v", data, kept, err)
		}
	})
}
