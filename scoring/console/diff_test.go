package console

import (
	"fmt"
	"strings"
	"testing"
)

// An edit of one line of a large pack (3,000 rules, 24,000 lines) is one line removed and one
// added, at their line numbers; past 4M table cells the whole pack showed as removed and added
// again (48,000 lines for an approver to read).
func TestLineDiffOfALargePack(t *testing.T) {
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, "  - id: r%d\n    tag: t\n    description: d\n    owner: o\n    level: 300\n    mode: shadow\n    when: x >= %d\n    reason: \"r\"\n", i, i)
	}
	old := "pack: p\nrules:\n" + b.String()
	edited := strings.Replace(old, "when: x >= 1500\n", "when: x >= 1501\n", 1)
	d := lineDiff(old, edited)
	var ch []diffLine
	for _, l := range d {
		if l.Op != " " {
			ch = append(ch, l)
		}
	}
	want := 2 + 1500*8 + 7 // the line of rule r1500's when
	if len(ch) != 2 || ch[0] != (diffLine{Op: "-", Old: want, Text: "    when: x >= 1500"}) || ch[1] != (diffLine{Op: "+", New: want, Text: "    when: x >= 1501"}) {
		t.Fatalf("changed lines %+v, want line %d removed and added", ch, want)
	}
	if n := len(d); n != 2+3000*8+1 {
		t.Errorf("%d lines in the diff, want %d", n, 2+3000*8+1)
	}
	if last := d[len(d)-1]; last.Old != 2+3000*8 || last.New != 2+3000*8 {
		t.Errorf("last line numbered %d/%d", last.Old, last.New)
	}
}

// Small diffs are as before: shared lines around, the changed ones numbered in their texts.
func TestLineDiffNumbers(t *testing.T) {
	d := lineDiff("a\nb\nc\nd\n", "a\nx\nc\nd\ne\n")
	want := []diffLine{{" ", 1, 1, "a"}, {"-", 2, 0, "b"}, {"+", 0, 2, "x"}, {" ", 3, 3, "c"}, {" ", 4, 4, "d"}, {"+", 0, 5, "e"}}
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("diff %v, want %v", d, want)
	}
}
