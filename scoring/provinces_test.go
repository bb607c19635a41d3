package scoring

import (
	"strings"
	"testing"
)

func TestParseProvinces(t *testing.T) {
	p, err := ParseProvinces(strings.NewReader("# home provinces\n1380013\tBeijing\n\n1391234\tGuangdong # comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 2 || p.of(prefixKey7("1391234")) != "Guangdong" || p.of(prefixKey7("1391235")) != "" {
		t.Errorf("parsed %d segments; lookups wrong", p.Len())
	}
	for _, bad := range []string{"1380013 Beijing\n", "138001\tBeijing\n", "2380013\tBeijing\n", "1380013\t\n"} {
		_, err := ParseProvinces(strings.NewReader("# x\n" + bad))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: err %v, want a line 2 error", bad, err)
		}
	}
	// A line too long to read is named (it said "bufio.Scanner: token too long").
	if _, err := ParseProvinces(strings.NewReader("# x\n1380013\t" + strings.Repeat("x", 70000) + "\n")); err == nil || err.Error() != "line 2: longer than 65536 bytes" {
		t.Errorf("a long line: %v", err)
	}
	// A number where its segment goes (a table of numbers, not of segments) is named masked.
	if _, err := ParseProvinces(strings.NewReader("13800138000\tBeijing\n")); err == nil || strings.Contains(err.Error(), "13800138000") || !strings.Contains(err.Error(), "<phone>") {
		t.Errorf("a number as the segment: err %v, want it masked", err)
	}
	var none *Provinces
	if none.of(prefixKey7("1380013")) != "" || none.Len() != 0 {
		t.Error("a nil table must answer nothing")
	}
}
