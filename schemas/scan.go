package schemas

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// The decoders read JSON in one pass: decodeObject checks the syntax of the whole document while it
// finds the members of the top-level object, decodes the string values of the known ones, and
// skips (checking them) the values of unknown ones. It accepts exactly the documents json.Valid
// accepts (decode_diff_test.go compares the two on random and hostile input); for a refused document the
// message still comes from encoding/json (syntaxError), so it reads as it always has.

// maxNestingDepth is encoding/json's limit on nested arrays and objects, which json.Valid applies
// too: the top-level object is depth 1.
const maxNestingDepth = 10000

// fieldSet is the known members of one flat object type.
type fieldSet struct {
	names []string
	// index returns the position in names of the member named exactly name (decoded), or -1.
	index func(name []byte) int
	// raw is the member whose value is kept as JSON text of any type (ts), or -1.
	raw int
	// byStart is, for a hash of the first two bytes of a name (startHash), 1 + the position of
	// the one member whose name starts so, or 0: a name as producers write it (no escapes) is
	// found with one comparison (quickMember).
	byStart [64]int8
	mult    uint
}

// newFieldSet makes the fieldSet of names (at most maxMembers, each at least 2 bytes long). Of
// names starting with the same two bytes (device_id, decision_id) only the first is found by
// quickMember; the others take lookupMember's path.
func newFieldSet(names []string, index func([]byte) int, raw int) *fieldSet {
	fs := &fieldSet{names: names, index: index, raw: raw}
	for fs.mult = 1; ; fs.mult++ {
		if fs.mult > 1000 {
			panic(fmt.Sprintf("schemas: no start hash separates the members %q", names))
		}
		fs.byStart = [64]int8{}
		ok := true
		starts := map[[2]byte]bool{}
		for k, name := range names {
			if starts[[2]byte{name[0], name[1]}] {
				continue
			}
			starts[[2]byte{name[0], name[1]}] = true
			h := fs.startHash(name[0], name[1])
			ok = ok && fs.byStart[h] == 0
			fs.byStart[h] = int8(k + 1)
		}
		if ok {
			return fs
		}
	}
}

func (fs *fieldSet) startHash(c0, c1 byte) uint { return (uint(c0)*fs.mult + uint(c1)) % 64 }

// quickMember returns the known member whose name, as it is, follows the quote at data[i], and
// the position past its closing quote; -1 if there is none (the name may still be a known one
// written with escapes).
func (fs *fieldSet) quickMember(data []byte, i int) (int, int) {
	if i+3 >= len(data) {
		return -1, 0
	}
	k := int(fs.byStart[fs.startHash(data[i+1], data[i+2])]) - 1
	if k < 0 {
		return -1, 0
	}
	name := fs.names[k]
	end := i + 1 + len(name)
	if end >= len(data) || data[end] != '"' || string(data[i+1:end]) != name {
		return -1, 0
	}
	return k, end + 1
}

// maxMembers bounds len(fieldSet.names) (objectValues, the seen bit set).
const maxMembers = 16

// span is a range of bytes [start, end).
type span struct{ start, end int }

// objectValues is what decodeObject found of the known members. A string member's span is its
// decoded text in the buffer decodeObject returns; empty when the member is absent, null, refused
// or given twice. The raw member's span is its JSON text in the document (empty: absent); when that
// text is a string, rawText is its decoded text in the buffer, or rawWhy why it cannot be decoded.
type objectValues struct {
	text    [maxMembers]span
	rawJSON span
	rawText span
	rawWhy  string
}

// objectScan is what decodeObject found besides the values it stored.
type objectScan struct {
	unknown  []byte // quoted name of the first member that is not a known field, nil if none
	err      error  // first member with a value of the wrong type, or given twice
	errFirst bool   // err comes before the unknown member in the document
}

func (s objectScan) unknownErr() error {
	name, _ := jsonString(s.unknown) // decodeObject checked that it decodes
	if name == "" {
		return &FieldError{Reason: `unknown field ""`}
	}
	// The name is the caller's: shortened (one real answer was 174,800 bytes long), escaped,
	// and with any phone number masked.
	return &FieldError{Field: ShowName(name, maxShownName), Reason: "unknown field"}
}

// maxShownName is how much of an unknown member name an error shows.
const maxShownName = 40

// fail records err as the scan's error unless an earlier member already failed.
func (s *objectScan) fail(err *FieldError) {
	if s.err == nil {
		s.err = err
		s.errFirst = s.unknown == nil
	}
}

// Flags scanString reports about a string.
const (
	strEscaped  = 1 << iota // holds a backslash escape
	strNonASCII             // holds a byte ≥ 0x80 (which may not be UTF-8)
)

// decodeObject reads one flat JSON object and rejects trailing data. It appends the decoded text of
// the known string members to buf (see objectValues) and returns it. Syntax errors and a document
// that is not an object are returned as the error; unknown and bad members are reported in the
// objectScan, so the caller can decide after seeing every member (`schema` may come last).
//
// Names match exactly. encoding/json alone would also take "PHONE" or "Phone" for phone, letting a
// later spelling override an earlier one, while JSON Schema and most other decoders treat those as
// different (unknown) members; a member given twice is refused for the same reason.
//
// Nothing in vals or the returned buffer refers to data except vals.rawJSON and scan.unknown, which
// are positions and a slice of it: the caller copies what it keeps.
func decodeObject(data []byte, fs *fieldSet, vals *objectValues, buf []byte) ([]byte, objectScan, error) {
	var scan objectScan
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		if i < len(data) && json.Valid(data) {
			return buf, scan, &FieldError{Reason: "expected a JSON object, got " + valueKind(data[i])}
		}
		return buf, scan, syntaxError(data)
	}
	var seen uint64
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return buf, scan, syntaxError(data)
			}
			kstart := i
			var k, kflags int
			if k, i = fs.quickMember(data, kstart); k < 0 {
				if i, kflags = scanString(data, kstart); i < 0 {
					return buf, scan, syntaxError(data)
				}
				k = lookupMember(fs, data[kstart:i], kflags)
			}
			rawKey := data[kstart:i]
			if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
				return buf, scan, syntaxError(data)
			}
			if i = skipSpace(data, i+1); i >= len(data) {
				return buf, scan, valueSyntaxError(data, rawKey, i)
			}
			switch {
			case k < 0:
				vstart := i
				var high bool
				if i, high = scanValue(data, i, 2); i < 0 {
					return buf, scan, valueSyntaxError(data, rawKey, vstart)
				}
				scan.unknownMember(rawKey, kflags, data[vstart:i], high)
			case seen&(1<<k) != 0:
				vstart := i
				if i, _ = scanValue(data, i, 2); i < 0 {
					return buf, scan, valueSyntaxError(data, rawKey, vstart)
				}
				scan.fail(fieldErr(fs.names[k], "appears more than once"))
			case data[i] == '"':
				seen |= 1 << k
				vstart := i
				var vflags int
				if i, vflags = scanString(data, i); i < 0 {
					return buf, scan, valueSyntaxError(data, rawKey, vstart)
				}
				start := len(buf)
				var why string
				buf, why = appendString(buf, data[vstart+1:i-1], vflags)
				if why != "" {
					buf = buf[:start]
				}
				if k == fs.raw {
					vals.rawJSON = span{vstart, i}
					vals.rawText, vals.rawWhy = span{start, len(buf)}, why
				} else if why != "" {
					scan.fail(fieldErr(fs.names[k], "%s", why))
				} else {
					vals.text[k] = span{start, len(buf)}
				}
			default:
				seen |= 1 << k
				vstart, c := i, data[i]
				if i, _ = scanValue(data, i, 2); i < 0 {
					return buf, scan, valueSyntaxError(data, rawKey, vstart)
				}
				if k == fs.raw {
					vals.rawJSON = span{vstart, i}
				} else if c != 'n' { // null: same as absent
					scan.fail(fieldErr(fs.names[k], "must be a string, got %s", valueKind(c)))
				}
			}
			if i = skipSpace(data, i); i < len(data) && data[i] == ',' {
				i = skipSpace(data, i+1)
				continue
			}
			if i < len(data) && data[i] == '}' {
				i++
				break
			}
			return buf, scan, syntaxError(data)
		}
	}
	if skipSpace(data, i) != len(data) {
		return buf, scan, syntaxError(data)
	}
	return buf, scan, nil
}

// lookupMember returns the index of the member named by the quoted JSON string rawKey (flags from
// scanString), or -1.
func lookupMember(fs *fieldSet, rawKey []byte, flags int) int {
	inner := rawKey[1 : len(rawKey)-1]
	if flags&strEscaped == 0 {
		return fs.index(inner) // a name that is not ASCII matches none
	}
	if flags&strNonASCII != 0 && !utf8.Valid(inner) {
		return -1
	}
	var tmp [32]byte
	name, why := appendUnescaped(tmp[:0], inner)
	if why != "" {
		return -1
	}
	for k, n := range fs.names { // rare: a name written with escapes
		if n == string(name) {
			return k
		}
	}
	return -1
}

// unknownMember notes a member that is not a known field. Whether it is refused depends on the
// `schema` member, which may come later; text that is not valid UTF-8 is refused whatever the
// version, in its name or anywhere in its value (JSON text is UTF-8, RFC 8259 section 8.1). high
// tells whether the value holds any byte ≥ 0x80.
func (s *objectScan) unknownMember(rawKey []byte, kflags int, value []byte, high bool) {
	inner := rawKey[1 : len(rawKey)-1]
	if why := stringWhy(inner, kflags); why != "" {
		s.fail(&FieldError{Reason: "member name " + Excerpt(string(inner), maxShownName) + " " + why})
		return
	}
	if high && !utf8.Valid(value) {
		name, _ := jsonString(rawKey)
		s.fail(&FieldError{Field: ShowName(name, maxShownName), Reason: "is not valid UTF-8"})
	}
	if s.unknown == nil {
		s.unknown = rawKey
	}
}

// errBOM is the error for JSON text that starts with a byte order mark, which RFC 8259 (§8.1)
// forbids; encoding/json would call it an "invalid character 'ï'".
var errBOM = &FieldError{Reason: "invalid JSON: the text starts with a byte order mark (U+FEFF); send it without one"}

// startsWithBOM reports whether data, after JSON whitespace, starts with a UTF-8 byte order mark.
func startsWithBOM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("\xef\xbb\xbf"))
}

// syntaxError explains why data is not exactly one JSON value.
func syntaxError(data []byte) error {
	_, err := syntaxErrorAt(data)
	return err
}

// syntaxErrorAt is syntaxError, with the offset encoding/json reports for a syntax error (-1 for
// the end of the input, or no offset).
func syntaxErrorAt(data []byte) (offset int64, err error) {
	if startsWithBOM(data) {
		return -1, errBOM
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return se.Offset, jsonError(err)
		}
		return -1, jsonError(err)
	}
	return -1, afterFirstValue(v)
}

// valueSyntaxError is syntaxError for a document that stops being JSON in the value of the member
// rawKey (its quoted name), which starts at byte vstart (or is missing there): the error names the
// member, as one of a value of the wrong type does — "ex_id: invalid JSON at byte 62: invalid
// character '\t' in string literal" (a tab or a line break pasted into a string), "device_id:
// invalid JSON: unexpected end of input" (a quote missing) — where it named only a byte offset
// in a body of several such strings.
func valueSyntaxError(data, rawKey []byte, vstart int) error {
	at, err := syntaxErrorAt(data)
	fe, ok := err.(*FieldError)
	if !ok || fe.Field != "" || err == errBOM || at >= 0 && at < int64(vstart) {
		return err
	}
	name, why := jsonString(rawKey)
	if why != "" || name == "" {
		return err
	}
	return &FieldError{Field: ShowName(name, maxShownName), Reason: memberSyntaxReason(name, fe.Reason)}
}

// afterFirstValue is the error of a text whose first JSON value, v, is followed by more: named by
// what v is. A first value that is no object (the "0" of "00", "0x1", "0{}") is what is wrong,
// not data after an object there is not.
func afterFirstValue(v []byte) error {
	switch k := valueKind(v[0]); k {
	case "object", "array":
		return &FieldError{Reason: "unexpected data after the JSON " + k}
	default:
		return &FieldError{Reason: "expected a JSON object, got " + k}
	}
}

// jsonString decodes a quoted JSON string whose syntax has been checked. If the text is not valid
// Unicode — a byte that is not UTF-8, or a \u escape of half a surrogate pair — it returns why,
// instead of the U+FFFD encoding/json would put there: that substitution makes different values
// equal (three distinct event ids become one), and hides a producer's encoding bug.
func jsonString(raw []byte) (s, why string) {
	inner := raw[1 : len(raw)-1]
	b, why := appendString(nil, inner, strEscaped|strNonASCII)
	if why != "" {
		return "", why
	}
	return string(b), ""
}

// appendString appends the decoded text of a JSON string's content in (syntax checked, flags from
// scanString) to b, or returns why it is not valid Unicode (b then holds part of it).
func appendString(b, in []byte, flags int) ([]byte, string) {
	if flags&strNonASCII != 0 && !utf8.Valid(in) { // escapes are ASCII: this checks the raw text
		return b, "is not valid UTF-8"
	}
	if flags&strEscaped == 0 {
		return append(b, in...), ""
	}
	return appendUnescaped(b, in)
}

// stringWhy is appendString's verdict without the text.
func stringWhy(in []byte, flags int) string {
	if flags&strNonASCII != 0 && !utf8.Valid(in) {
		return "is not valid UTF-8"
	}
	if flags&strEscaped == 0 {
		return ""
	}
	for i := 0; i < len(in); i++ {
		if in[i] != '\\' {
			continue
		}
		if in[i+1] != 'u' {
			i++
			continue
		}
		r := hex4(in[i+2:])
		i += 5
		if utf16.IsSurrogate(r) {
			if r >= 0xDC00 || i+7 > len(in) || in[i+1] != '\\' || in[i+2] != 'u' ||
				utf16.DecodeRune(r, hex4(in[i+3:])) == utf8.RuneError {
				return whySurrogate
			}
			i += 6
		}
	}
	return ""
}

// whySurrogate is why a string with half a UTF-16 surrogate pair is refused.
const whySurrogate = "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): not valid Unicode"

// appendUnescaped appends the decoded escapes of a JSON string's valid UTF-8 content to b.
func appendUnescaped(b, in []byte) ([]byte, string) {
	for i := 0; i < len(in); {
		if in[i] != '\\' {
			// Copy the run up to the next escape at once.
			j := i + 1
			for j < len(in) && in[j] != '\\' {
				j++
			}
			b = append(b, in[i:j]...)
			i = j
			continue
		}
		c := in[i+1]
		i += 2
		switch c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(in[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by an escaped low one.
				if r >= 0xDC00 || i+6 > len(in) || in[i] != '\\' || in[i+1] != 'u' {
					return b, whySurrogate
				}
				if r = utf16.DecodeRune(r, hex4(in[i+2:])); r == utf8.RuneError {
					return b, whySurrogate
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, c)
		}
	}
	return b, ""
}

// hex4 reads the 4 hex digits of a \u escape (scanString checked them).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		r = r<<4 | rune(hexValue[c])
	}
	return r
}

// hexValue is the value of a hex digit, 0xff for any other byte.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

// strPlain marks the bytes a JSON string holds as they are, with nothing to note: printable ASCII
// other than '"' and '\\'.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the JSON string whose opening quote is at data[i] and returns the position
// just past its closing quote, with strEscaped and strNonASCII flags; -1 if it is not valid JSON.
func scanString(data []byte, i int) (int, int) {
	flags := 0
	high := uint64(swarHigh) // the high bits of bytes that stop the word loop: all until one is seen
	for i++; ; {
		// 8 bytes at a time while none is a quote, a backslash, a control character, or (until
		// the first) a byte ≥ 0x80.
		for i+8 <= len(data) {
			w := binary.LittleEndian.Uint64(data[i:])
			q, b := w^(swarOnes*'"'), w^(swarOnes*'\\')
			stop := ((w-swarOnes*0x20)&^w | (q-swarOnes)&^q | (b-swarOnes)&^b) & swarHigh
			if stop |= w & high; stop != 0 {
				i += bits.TrailingZeros64(stop) >> 3 // the first such byte: borrows only run upwards
				break
			}
			i += 8
		}
		for i < len(data) && strPlain[data[i]] {
			i++
		}
		if i >= len(data) {
			return -1, 0
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, flags
		case c == '\\':
			if i+1 >= len(data) {
				return -1, 0
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || hexValue[data[i+2]]|hexValue[data[i+3]]|hexValue[data[i+4]]|hexValue[data[i+5]] == 0xff {
					return -1, 0
				}
				i += 6
			default:
				return -1, 0
			}
			flags |= strEscaped
		case c < 0x20:
			return -1, 0
		default: // ≥ 0x80: any byte, as json.Valid takes it; the caller checks UTF-8
			flags |= strNonASCII
			high = 0
			i++
		}
	}
}

// Constants of the word-at-a-time tests (x-ones)&^x&high: the high bit of every byte of x that is
// zero, and of some bytes above it.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// scanValue checks the JSON value that starts at data[i] (not space), an element of a container at
// depth-1, and returns the position just past it and whether it holds a byte ≥ 0x80; -1 if it is
// not valid JSON.
func scanValue(data []byte, i, depth int) (int, bool) {
	switch c := data[i]; c {
	case '"':
		end, flags := scanString(data, i)
		return end, flags&strNonASCII != 0
	case '{', '[':
		if depth > maxNestingDepth {
			return -1, false
		}
		return scanContainer(data, i, depth)
	case 't':
		return scanLiteral(data, i, "true"), false
	case 'f':
		return scanLiteral(data, i, "false"), false
	case 'n':
		return scanLiteral(data, i, "null"), false
	default:
		return scanNumber(data, i), false
	}
}

// scanContainer checks the object or array that starts at data[i], at the given depth.
func scanContainer(data []byte, i, depth int) (int, bool) {
	closing := byte(']')
	object := data[i] == '{'
	if object {
		closing = '}'
	}
	high := false
	if i = skipSpace(data, i+1); i < len(data) && data[i] == closing {
		return i + 1, false
	}
	for {
		if i >= len(data) {
			return -1, false
		}
		if object {
			if data[i] != '"' {
				return -1, false
			}
			var flags int
			if i, flags = scanString(data, i); i < 0 {
				return -1, false
			}
			high = high || flags&strNonASCII != 0
			if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
				return -1, false
			}
			if i = skipSpace(data, i+1); i >= len(data) {
				return -1, false
			}
		}
		var h bool
		if i, h = scanValue(data, i, depth+1); i < 0 {
			return -1, false
		}
		high = high || h
		if i = skipSpace(data, i); i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}
		if i < len(data) && data[i] == closing {
			return i + 1, high
		}
		return -1, false
	}
}

// scanLiteral checks that data holds lit at i.
func scanLiteral(data []byte, i int, lit string) int {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber checks the JSON number that starts at data[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	if i >= len(data) || !isDigitByte(data[i]) {
		return -1
	}
	if data[i] == '0' {
		i++
	} else {
		i = skipDigits(data, i)
	}
	if i < len(data) && data[i] == '.' {
		if i++; i >= len(data) || !isDigitByte(data[i]) {
			return -1
		}
		i = skipDigits(data, i)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		if i++; i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigitByte(data[i]) {
			return -1
		}
		i = skipDigits(data, i)
	}
	return i
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && isDigitByte(data[i]) {
		i++
	}
	return i
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// valueKind names the JSON type of the value whose first byte is c.
func valueKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}
