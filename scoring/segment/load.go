package segment

import (
	"bufio"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// defaultTSV is the table compiled into the binary.
//
//go:embed segments.tsv
var defaultTSV string

var defaultTable = sync.OnceValue(func() *Table {
	t, err := load(strings.NewReader(defaultTSV), "segments.tsv (embedded)")
	if err != nil {
		panic(err) // caught by the package tests; cannot happen in a tested build
	}
	return t
})

// Default returns the table built from the segments.tsv compiled into the binary. It is parsed on
// first use and shared; Tables are read-only.
func Default() *Table { return defaultTable() }

// ParseError reports a table row that cannot be used, or a table without rows.
type ParseError struct {
	Source string // the file path given to LoadFile; "" for Load
	Line   int    // 1-based line number; 0 when the problem is not on one line
	Reason string
}

func (e *ParseError) Error() string {
	switch {
	case e.Source != "" && e.Line > 0:
		return fmt.Sprintf("segment: %s:%d: %s", e.Source, e.Line, e.Reason)
	case e.Line > 0:
		return fmt.Sprintf("segment: line %d: %s", e.Line, e.Reason)
	case e.Source != "":
		return fmt.Sprintf("segment: %s: %s", e.Source, e.Reason)
	}
	return "segment: " + e.Reason
}

// Load reads a table in the segments.tsv format (see that file's header). Errors about the
// content are *ParseError and name the line.
func Load(r io.Reader) (*Table, error) { return load(r, "") }

// LoadFile reads a table from a file in the segments.tsv format, typically a copy of the default
// that the risk team maintains. Errors about the content are *ParseError naming the path and line.
func LoadFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	defer f.Close()
	return load(f, path)
}

// maxRows keeps row indexes within the uint16 entries of the lookup arrays (index 0 is reserved
// for "no row").
const maxRows = 1<<16 - 1

const maxLineLen = 64 << 10

type row struct {
	line   int
	prefix string
	info   Info
}

// rowKey identifies a row for duplicate detection: one prefix may carry one iot row (13-digit
// numbering) and one row of another class (11-digit numbering).
type rowKey struct {
	prefix string
	iot    bool
}

func load(r io.Reader, source string) (*Table, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	var rows []row
	seen := make(map[rowKey]int)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF") // byte-order mark left by some editors
		}
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if len(rows) == 0 && isHeader(text) {
			continue // an uncommented column header
		}
		rw, reason := parseRow(text)
		if reason != "" {
			return nil, &ParseError{Source: source, Line: line, Reason: reason}
		}
		rw.line = line
		k := rowKey{rw.prefix, rw.info.Class == IoT}
		if first, dup := seen[k]; dup {
			kind := "a non-iot"
			if k.iot {
				kind = "an iot"
			}
			return nil, &ParseError{Source: source, Line: line, Reason: fmt.Sprintf(
				"duplicate prefix %s: line %d already has %s row for it (a prefix may have one iot row and one row of another class)",
				rw.prefix, first, kind)}
		}
		seen[k] = line
		rows = append(rows, rw)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Source: source, Line: line + 1, Reason: fmt.Sprintf("line is longer than %d bytes", maxLineLen)}
		}
		if source != "" {
			return nil, fmt.Errorf("segment: reading %s: %w", source, err)
		}
		return nil, fmt.Errorf("segment: reading the table: %w", err)
	}
	if len(rows) == 0 {
		return nil, &ParseError{Source: source, Reason: "the table has no prefix rows, so every number would be unallocated"}
	}
	if len(rows) > maxRows {
		return nil, &ParseError{Source: source, Reason: fmt.Sprintf("the table has %d rows; at most %d are supported", len(rows), maxRows)}
	}
	return build(rows), nil
}

func isHeader(text string) bool {
	first, _, _ := strings.Cut(text, "\t")
	return strings.EqualFold(strings.TrimSpace(first), "prefix")
}

const columns = "prefix, carrier, class, host, note"

// parseRow parses one data line; reason is "" on success.
func parseRow(text string) (rw row, reason string) {
	fields := strings.Split(text, "\t")
	switch {
	case len(fields) < 4:
		if len(fields) == 1 && strings.ContainsAny(strings.TrimSpace(text), " ") {
			return row{}, fmt.Sprintf("expected 4 or 5 tab-separated fields (%s), got 1: are the columns separated by spaces instead of tabs?", columns)
		}
		return row{}, fmt.Sprintf("expected 4 or 5 tab-separated fields (%s), got %d", columns, len(fields))
	case len(fields) > 5:
		return row{}, fmt.Sprintf("expected 4 or 5 tab-separated fields (%s), got %d: a note cannot contain a tab", columns, len(fields))
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	prefix, carrier, className, host := fields[0], fields[1], fields[2], fields[3]

	switch {
	case prefix == "":
		return row{}, "the prefix is empty"
	case strings.IndexFunc(prefix, func(r rune) bool { return r < '0' || r > '9' }) >= 0:
		return row{}, fmt.Sprintf("prefix %q is not all digits", prefix)
	case prefix[0] != '1':
		return row{}, fmt.Sprintf("prefix %s does not start with 1: mainland mobile numbers all do", prefix)
	case len(prefix) < 3 || len(prefix) > 5:
		return row{}, fmt.Sprintf("prefix %s has %d digits: a prefix has 3 to 5", prefix, len(prefix))
	}
	if !validCarrier(carrier) {
		return row{}, fmt.Sprintf("bad carrier %q: want CM, CU, CT, CBN or empty", carrier)
	}
	class, ok := ParseClass(className)
	if !ok {
		return row{}, fmt.Sprintf("bad class %q: want one of %s", className, strings.Join(classNames[:], ", "))
	}
	if !validCarrier(host) {
		return row{}, fmt.Sprintf("bad host carrier %q: want CM, CU, CT, CBN or empty (empty means the same as carrier)", host)
	}
	switch {
	case class == Unallocated && (carrier != "" || host != ""):
		return row{}, fmt.Sprintf("an unallocated row names no carrier and no host (got carrier %q, host %q)", carrier, host)
	case class == Basic && carrier == "":
		return row{}, "a basic row needs a carrier"
	case class == MVNO && host == "":
		return row{}, "an mvno row needs a host carrier (the network the virtual operator rides)"
	}
	if host == "" {
		host = carrier
	}
	return row{prefix: prefix, info: Info{Prefix: prefix, Carrier: carrier, HostCarrier: host, Class: class}}, ""
}

func validCarrier(s string) bool {
	switch s {
	case "", CarrierMobile, CarrierUnicom, CarrierTelecom, CarrierBroadnet:
		return true
	}
	return false
}

// build expands every row into the range of 5-digit prefixes it covers. Rows are applied from
// the shortest prefix to the longest, so longer prefixes overwrite shorter ones; at equal length
// an iot row is applied before a non-iot one, so for 11-digit numbers the non-iot row wins.
func build(rows []row) *Table {
	t := &Table{infos: make([]Info, 1, len(rows)+1), rows: len(rows)}
	order := make([]int, len(rows))
	for i, rw := range rows {
		t.infos = append(t.infos, rw.info)
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := rows[a], rows[b]
		if c := cmp.Compare(len(ra.prefix), len(rb.prefix)); c != 0 {
			return c
		}
		return cmp.Compare(iotRank(ra.info.Class), iotRank(rb.info.Class))
	})
	for _, i := range order {
		rw := rows[i]
		lo, hi := span(rw.prefix)
		ref := uint16(i + 1)
		for n := lo; n < hi; n++ {
			t.short[n] = ref
		}
		if rw.info.Class == IoT {
			for n := lo; n < hi; n++ {
				t.long[n] = ref
			}
		}
	}
	return t
}

func iotRank(c Class) int {
	if c == IoT {
		return 0
	}
	return 1
}

// span returns the range of index values (digits 2–5 of a number) a validated prefix covers.
func span(prefix string) (lo, hi int) {
	v, _ := strconv.Atoi(prefix[1:])
	scale := 1
	for range 5 - len(prefix) {
		scale *= 10
	}
	return v * scale, (v + 1) * scale
}
