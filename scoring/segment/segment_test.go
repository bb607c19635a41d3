package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLookupSamples(t *testing.T) {
	tests := []struct {
		phone   string
		prefix  string
		carrier string
		host    string
		class   Class
	}{
		// basic, one per carrier and a few edges
		{"13812345678", "138", "CM", "CM", Basic},
		{"13401234567", "134", "CM", "CM", Basic},
		{"13481234567", "134", "CM", "CM", Basic},
		{"19812345678", "198", "CM", "CM", Basic},
		{"17212345678", "172", "CM", "CM", Basic},
		{"13012345678", "130", "CU", "CU", Basic},
		{"16612345678", "166", "CU", "CU", Basic},
		{"19612345678", "196", "CU", "CU", Basic},
		{"13312345678", "133", "CT", "CT", Basic},
		{"19912345678", "199", "CT", "CT", Basic},
		{"19012345678", "190", "CT", "CT", Basic},
		{"19212345678", "192", "CBN", "CM", Basic}, // Broadnet rides China Mobile's network
		// virtual operators: no carrier of their own, host is the network they ride
		{"16512345678", "165", "", "CM", MVNO},
		{"17031234567", "1703", "", "CM", MVNO},
		{"17051234567", "1705", "", "CM", MVNO},
		{"17061234567", "1706", "", "CM", MVNO},
		{"16712345678", "167", "", "CU", MVNO},
		{"17041234567", "1704", "", "CU", MVNO},
		{"17071234567", "1707", "", "CU", MVNO},
		{"17091234567", "1709", "", "CU", MVNO},
		{"17112345678", "171", "", "CU", MVNO},
		{"16212345678", "162", "", "CT", MVNO},
		{"17001234567", "1700", "", "CT", MVNO},
		{"17021234567", "1702", "", "CT", MVNO},
		// data-only cards
		{"14712345678", "147", "CM", "CM", DataOnly},
		{"14512345678", "145", "CU", "CU", DataOnly},
		{"14912345678", "149", "CT", "CT", DataOnly},
		// 13-digit IoT
		{"1440012345678", "1440", "CM", "CM", IoT},
		{"1441912345678", "1441", "CM", "CM", IoT},
		{"1480012345678", "148", "CM", "CM", IoT},
		{"1469912345678", "146", "CU", "CU", IoT},
		{"1410512345678", "1410", "CT", "CT", IoT},
		// 11-digit numbers inside IoT-only blocks keep the block's class and carrier
		{"14812345678", "148", "CM", "CM", IoT},
		{"14612345678", "146", "CU", "CU", IoT},
		{"14401234567", "1440", "CM", "CM", IoT},
		{"14101234567", "1410", "CT", "CT", IoT},
		// satellite and special ranges
		{"13491234567", "1349", "CT", "CT", Satellite},
		{"17400123456", "17400", "CT", "CT", Satellite},
		{"17405123456", "17405", "CT", "CT", Satellite},
		{"17406123456", "17406", "", "", Special},
		{"17412123456", "17412", "", "", Special},
		{"17491234567", "1749", "", "", Satellite},
	}
	tab := Default()
	for _, tc := range tests {
		want := Info{Prefix: tc.prefix, Carrier: tc.carrier, HostCarrier: tc.host, Class: tc.class}
		if got := tab.Lookup(tc.phone); got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tc.phone, got, want)
		}
	}
}

func TestLookupUnallocated(t *testing.T) {
	phones := []string{
		// 11 digits, prefixes nobody holds
		"10012345678", "11012345678", "12012345678", "12912345678",
		"14012345678", "14112345678", "14212345678", "14312345678", "14421234567",
		"15412345678", "16012345678", "16112345678", "16312345678", "16412345678",
		"16812345678", "16912345678", "17413123456", "17419123456", "17421234567",
		"17481234567", "17912345678", "19412345678",
		// 13 digits outside the IoT blocks
		"1450012345678", "1470012345678", "1442012345678", "1411012345678",
		"1380012345678",
		// malformed
		"", "1", "1381234567", "138123456789", "13812345678901", "23812345678",
		"1381234567x", "138-1234-567", "+8613812345", "\u00e51381234567",
	}
	tab := Default()
	for _, p := range phones {
		if got := tab.Lookup(p); got != (Info{}) {
			t.Errorf("Lookup(%q) = %+v, want the zero Info (unallocated)", p, got)
		}
		if got := tab.Lookup(p).Class; got.String() != "unallocated" {
			t.Errorf("Lookup(%q).Class = %v, want unallocated", p, got)
		}
	}
}

func TestLongestPrefixWins(t *testing.T) {
	tab := Default()
	pairs := []struct{ phone, prefix string }{
		{"13481234567", "134"},   // 134 row
		{"13491234567", "1349"},  // 1349 overrides 134
		{"17031234567", "1703"},  // no 170 row at all: the 4-digit rows hold the block
		{"17405123456", "17405"}, // 5-digit rows inside 174
		{"17406123456", "17406"},
		{"17413123456", ""}, // past 17412: nothing
		{"14401234567", "1440"},
		{"14421234567", ""},
	}
	for _, p := range pairs {
		if got := tab.Lookup(p.phone).Prefix; got != p.prefix {
			t.Errorf("Lookup(%s).Prefix = %q, want %q", p.phone, got, p.prefix)
		}
	}

	// Row order in the file must not matter: longer rows win whether they come first or last.
	for _, text := range []string{
		"134\tCM\tbasic\tCM\n1349\tCT\tsatellite\tCT\n",
		"1349\tCT\tsatellite\tCT\n134\tCM\tbasic\tCM\n",
	} {
		tab, err := Load(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := tab.Lookup("13491234567").Class; got != Satellite {
			t.Errorf("%q: 1349… is %v, want satellite", text, got)
		}
		if got := tab.Lookup("13481234567").Class; got != Basic {
			t.Errorf("%q: 1348… is %v, want basic", text, got)
		}
	}
}

// expect11 restates SIGNALS.md's allocation table independently of segments.tsv, for an 11-digit
// number whose first five digits are p5.
func expect11(p5 string) (carrier, host string, class Class) {
	p3, p4 := p5[:3], p5[:4]
	in := func(s string, list string) bool { return slices.Contains(strings.Fields(list), s) }
	switch {
	case p5 >= "17400" && p5 <= "17405":
		return "CT", "CT", Satellite
	case p5 >= "17406" && p5 <= "17412":
		return "", "", Special
	case p4 == "1749":
		return "", "", Satellite
	case p3 == "174":
		return "", "", Unallocated
	case p4 == "1349":
		return "CT", "CT", Satellite
	case in(p4, "1703 1705 1706"):
		return "", "CM", MVNO
	case in(p4, "1704 1707 1708 1709"):
		return "", "CU", MVNO
	case in(p4, "1700 1701 1702"):
		return "", "CT", MVNO
	case in(p4, "1440 1441"), p3 == "148":
		return "CM", "CM", IoT
	case p3 == "146":
		return "CU", "CU", IoT
	case p4 == "1410":
		return "CT", "CT", IoT
	case in(p3, "134 135 136 137 138 139 150 151 152 157 158 159 172 178 182 183 184 187 188 195 197 198"):
		return "CM", "CM", Basic
	case in(p3, "130 131 132 155 156 166 175 176 185 186 196"):
		return "CU", "CU", Basic
	case in(p3, "133 153 173 177 180 181 189 190 191 193 199"):
		return "CT", "CT", Basic
	case p3 == "192":
		return "CBN", "CM", Basic
	case p3 == "165":
		return "", "CM", MVNO
	case in(p3, "167 171"):
		return "", "CU", MVNO
	case p3 == "162":
		return "", "CT", MVNO
	case p3 == "147":
		return "CM", "CM", DataOnly
	case p3 == "145":
		return "CU", "CU", DataOnly
	case p3 == "149":
		return "CT", "CT", DataOnly
	}
	return "", "", Unallocated
}

// TestDefaultTableExhaustive checks every 5-digit prefix 10000–19999, for 11- and 13-digit numbers.
func TestDefaultTableExhaustive(t *testing.T) {
	tab := Default()
	counts := map[Class]int{}
	for n := 10000; n <= 19999; n++ {
		p5 := fmt.Sprint(n)
		carrier, host, class := expect11(p5)
		got := tab.Lookup(p5 + "123456")
		if got.Carrier != carrier || got.HostCarrier != host || got.Class != class || !strings.HasPrefix(p5, got.Prefix) {
			t.Errorf("11-digit %s…: got %+v, want carrier %q host %q class %v", p5, got, carrier, host, class)
		}
		if (got.Prefix == "") != (class == Unallocated) {
			t.Errorf("11-digit %s…: prefix %q with class %v", p5, got.Prefix, class)
		}
		counts[got.Class]++

		long := tab.Lookup(p5 + "12345678")
		wantLong := Info{}
		if class == IoT {
			wantLong = got
		}
		if long != wantLong {
			t.Errorf("13-digit %s…: got %+v, want %+v", p5, long, wantLong)
		}
	}
	for c := Unallocated; c < numClasses; c++ {
		if counts[c] == 0 {
			t.Errorf("no 11-digit prefix has class %v", c)
		}
	}
}

func TestDefaultTableFile(t *testing.T) {
	tab, err := LoadFile("segments.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != Default().Len() || tab.Len() < 80 {
		t.Errorf("segments.tsv has %d rows, the embedded copy %d", tab.Len(), Default().Len())
	}
	if tab.short != Default().short || tab.long != Default().long || !slices.Equal(tab.infos, Default().infos) {
		t.Error("the file on disk and the embedded table differ")
	}
}

func TestParseErrors(t *testing.T) {
	const good = "130\tCU\tbasic\tCU\tok\n"
	tests := []struct {
		name   string
		text   string
		line   int
		reason string
	}{
		{"bad carrier", "# c\n" + good + "131\tCX\tbasic\tCU\n", 3, `bad carrier "CX"`},
		{"lower-case carrier", "131\tcu\tbasic\tCU\n", 1, `bad carrier "cu"`},
		{"bad host", "1703\t\tmvno\tXX\n", 1, `bad host carrier "XX"`},
		{"bad class", good + "\n131\tCU\tmobile\tCU\n", 3, `bad class "mobile"`},
		{"duplicate prefix", good + "131\tCU\tbasic\tCU\n130\tCU\tbasic\tCU\n", 3, "duplicate prefix 130: line 1"},
		{"duplicate iot prefix", "148\tCM\tiot\tCM\n148\tCU\tiot\tCU\n", 2, "duplicate prefix 148: line 1 already has an iot row"},
		{"non-digit prefix", good + "13a\tCU\tbasic\tCU\n", 2, `prefix "13a" is not all digits`},
		{"signed prefix", "+130\tCU\tbasic\tCU\n", 1, `prefix "+130" is not all digits`},
		{"empty prefix", "\tCU\tbasic\tCU\n", 1, "the prefix is empty"},
		{"prefix not starting with 1", good + "230\tCU\tbasic\tCU\n", 2, "prefix 230 does not start with 1"},
		{"prefix too short", "13\tCU\tbasic\tCU\n", 1, "prefix 13 has 2 digits"},
		{"prefix too long", "#\n#\n130000\tCU\tbasic\tCU\n", 3, "prefix 130000 has 6 digits"},
		{"spaces instead of tabs", "130 CU basic CU\n", 1, "separated by spaces instead of tabs"},
		{"too few fields", "130\tCU\tbasic\n", 1, "got 3"},
		{"too many fields", "130\tCU\tbasic\tCU\tnote\textra\n", 1, "got 6"},
		{"basic without carrier", "130\t\tbasic\t\n", 1, "a basic row needs a carrier"},
		{"mvno without host", "1703\t\tmvno\t\n", 1, "an mvno row needs a host"},
		{"unallocated with carrier", "160\tCM\tunallocated\t\n", 1, "an unallocated row names no carrier"},
		{"CRLF line numbers", "# a\r\n" + "130\tCU\tbasic\tCU\r\n" + "131\tCU\tbasix\tCU\r\n", 3, `bad class "basix"`},
		{"line too long", good + "# " + strings.Repeat("x", maxLineLen) + "\n", 2, "longer than"},
		{"no rows", "# only comments\n\n   \n", 0, "no prefix rows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Load(strings.NewReader(tc.text))
			if err == nil {
				t.Fatalf("Load succeeded (%d rows), want an error", tab.Len())
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *ParseError", err, err)
			}
			if pe.Line != tc.line {
				t.Errorf("line = %d, want %d (%v)", pe.Line, tc.line, err)
			}
			if !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", pe.Reason, tc.reason)
			}
			if tc.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("segment: line %d: ", tc.line)) {
				t.Errorf("Error() = %q, want it to start with the line number", err)
			}
		})
	}
}

func TestLoadAccepts(t *testing.T) {
	text := "\uFEFF# comment\n" +
		"prefix\tcarrier\tclass\thost\tnote\n" + // an uncommented header is skipped
		"  # indented comment\n" +
		" 130 \t CU \t basic \t \t spaces around fields are trimmed; empty host = carrier\n" +
		"1703\t\tmvno\tCM\n" +
		"148\tCM\tiot\tCM\n" +
		"148\t\tunallocated\t\t11-digit 148 numbers are not issued\n" +
		"1300\t\tunallocated\t\tcarved out of 130\n"
	tab, err := Load(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 5 {
		t.Errorf("Len = %d, want 5", tab.Len())
	}
	checks := []struct {
		phone string
		want  Info
	}{
		{"13012345678", Info{"130", "CU", "CU", Basic}},
		{"13001234567", Info{"1300", "", "", Unallocated}},
		{"17031234567", Info{"1703", "", "CM", MVNO}},
		{"14812345678", Info{"148", "", "", Unallocated}},  // non-iot row governs 11 digits
		{"1481234567890", Info{"148", "CM", "CM", IoT}},    // iot row governs 13 digits
		{"13812345678", Info{}},                            // a replacement, not a merge
		{"1301234567890", Info{}},                          // 13 digits outside IoT
		{"14812", Info{}},                                  // bad length
		{"17041234567", Info{}},                            // other 170x not listed
		{"1480000000000", Info{"148", "CM", "CM", IoT}},    // lowest number of the block
		{"14899999999", Info{"148", "", "", Unallocated}},  // highest 11-digit number of the block
		{"1489999999999", Info{"148", "CM", "CM", IoT}},    // highest 13-digit number of the block
		{"13099999999", Info{"130", "CU", "CU", Basic}},    // end of the 130 block
		{"13100000000", Info{}},                            // just past it
		{"12999999999", Info{}},                            // just before it
		{"13009999999", Info{"1300", "", "", Unallocated}}, // end of the carve-out
	}
	for _, c := range checks {
		if got := tab.Lookup(c.phone); got != c.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", c.phone, got, c.want)
		}
	}
}

func TestLoadOverridesDefault(t *testing.T) {
	// The risk team's copy: the default plus a new allocation and an 11-digit override.
	custom := defaultTSV + "\n" +
		"# added by the risk team\n" +
		"1600\t\tmvno\tCT\ta new virtual-operator block\n" +
		"146\t\tunallocated\t\tno 11-digit numbers in the IoT block\n"
	path := filepath.Join(t.TempDir(), "segments.tsv")
	if err := os.WriteFile(path, []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if tab.Len() != def.Len()+2 {
		t.Errorf("Len = %d, want %d", tab.Len(), def.Len()+2)
	}
	if got, want := tab.Lookup("16001234567"), (Info{"1600", "", "CT", MVNO}); got != want {
		t.Errorf("new block: got %+v, want %+v", got, want)
	}
	if got := tab.Lookup("16011234567"); got != (Info{}) {
		t.Errorf("1601 is still unallocated, got %+v", got)
	}
	if got := tab.Lookup("14612345678"); got != (Info{"146", "", "", Unallocated}) {
		t.Errorf("11-digit 146: got %+v", got)
	}
	if got := tab.Lookup("1461234567890"); got != def.Lookup("1461234567890") || got.Class != IoT {
		t.Errorf("13-digit 146 should be untouched: got %+v", got)
	}
	// Everything else answers as the default does.
	for n := 10000; n <= 19999; n++ {
		p := fmt.Sprint(n)
		if strings.HasPrefix(p, "1600") || strings.HasPrefix(p, "146") {
			continue
		}
		for _, phone := range []string{p + "123456", p + "12345678"} {
			if a, b := tab.Lookup(phone), def.Lookup(phone); a != b {
				t.Fatalf("Lookup(%s): custom %+v, default %+v", phone, a, b)
			}
		}
	}
	if Default().Lookup("16001234567").Class != Unallocated {
		t.Error("loading a custom table changed the default")
	}
}

func TestLoadFileErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.tsv")
	if err := os.WriteFile(path, []byte("# header\n130\tCU\tbasic\tCU\n155\tCU\tbasic\tUC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Source != path || pe.Line != 3 {
		t.Fatalf("got %v, want a *ParseError for %s line 3", err, path)
	}
	if want := fmt.Sprintf("segment: %s:3: bad host carrier \"UC\"", path); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", err, want)
	}

	_, err = LoadFile(filepath.Join(t.TempDir(), "missing.tsv"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}

func TestCarrierMismatch(t *testing.T) {
	tab := Default()
	tests := []struct {
		phone    string
		reported string
		want     bool
	}{
		{"13812345678", "CM", false},
		{"13812345678", "CU", true},
		{"13812345678", "CT", true},
		{"13812345678", "", false}, // gateway reported nothing
		{"13012345678", "CU", false},
		{"13312345678", "CM", true},
		{"17031234567", "CM", false}, // MVNO on CM reported as CM
		{"17031234567", "CU", true},
		{"16512345678", "CM", false},
		{"17041234567", "CU", false}, // MVNO on CU
		{"17041234567", "CM", true},
		{"16212345678", "CT", false}, // MVNO on CT
		{"17011234567", "CU", true},
		{"14712345678", "CM", false}, // data card
		{"1460012345678", "CU", false},
		{"1460012345678", "CT", true},
		{"13491234567", "CT", false}, // satellite range held by CT
		{"13491234567", "CM", true},
		{"19212345678", "CM", false}, // Broadnet on China Mobile's network: see segments.tsv
		{"19212345678", "CU", true},
		{"17406123456", "CM", false}, // no host to compare with
		{"16012345678", "CM", false}, // unallocated: its own signal
		{"bogus", "CT", false},
	}
	for _, tc := range tests {
		info := tab.Lookup(tc.phone)
		if got := CarrierMismatch(info, tc.reported); got != tc.want {
			t.Errorf("CarrierMismatch(%s %+v, %q) = %v, want %v", tc.phone, info, tc.reported, got, tc.want)
		}
	}
}

func TestClass(t *testing.T) {
	for c := Unallocated; c < numClasses; c++ {
		name := c.String()
		back, ok := ParseClass(name)
		if !ok || back != c {
			t.Errorf("ParseClass(%q) = %v, %v; want %v", name, back, ok, c)
		}
		text, err := c.MarshalText()
		if err != nil || string(text) != name {
			t.Errorf("MarshalText(%v) = %q, %v", c, text, err)
		}
	}
	want := []string{"unallocated", "basic", "mvno", "data_only", "iot", "satellite", "special"}
	for i, w := range want {
		if got := Class(i).String(); got != w {
			t.Errorf("Class(%d) = %q, want %q", i, got, w)
		}
	}
	if got := Class(42).String(); got != "Class(42)" {
		t.Errorf("Class(42).String() = %q", got)
	}
	if _, ok := ParseClass("MVNO"); ok {
		t.Error("ParseClass is case-sensitive, like the table")
	}
}

func TestZeroTable(t *testing.T) {
	var tab Table
	if got := tab.Lookup("13812345678"); got != (Info{}) {
		t.Errorf("zero Table: got %+v", got)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab := Default()
	phones := []string{"13812345678", "17031234567", "1440012345678", "16012345678", "bad"}
	var sink Info
	allocs := testing.AllocsPerRun(1000, func() {
		for _, p := range phones {
			sink = tab.Lookup(p)
		}
	})
	_ = sink
	if allocs != 0 {
		t.Errorf("Lookup allocates %.1f times per run, want 0", allocs)
	}
}

var benchSink Info

func BenchmarkLookup(b *testing.B) {
	tab := Default()
	phones := []string{
		"13812345678", "13491234567", "17031234567", "17405123456",
		"14712345678", "1440012345678", "16012345678", "19212345678",
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		benchSink = tab.Lookup(phones[i&7])
		i++
	}
}
