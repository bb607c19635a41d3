package schemas

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Phone numbers must never leave riskflow in plaintext, and the easiest way to leak one is to echo
// a caller's value in an error message or a log line: the caller may have put a number in any
// field, in any format. Every value an error shows therefore goes through Excerpt, which masks
// phone-like numbers, escapes and truncates; the decoder refuses free-text fields (ids, codes) that
// hold one, using the same detector (ContainsPhone).
//
// What counts as phone-like: a number that riskflow would accept as a phone (11 digits starting
// with 1, or a 13-digit IoT number starting with 14), optionally preceded by +86, 86, 0086 or the
// trunk prefix 0, and written with or without runs of separators (of any length) between its
// digits. Digits are those of any script (Unicode Nd: full-width ０-９ as Chinese input methods
// type them, Arabic-Indic, mathematical …), the characters that show one digit (①, ¹, ⑴: see
// otherDigits) and Chinese numerals; separators are space, tab, '-', '.', '(', ')', '/', '_', ':',
// '\', '+' and their full-width, typographic and invisible cousins (U+3000, '－', '。', NBSP,
// dashes, middle dots, zero-width space, combining marks: see isWideSep), while what delimits
// tokens (quotes, commas, '|', '=', line breaks) splits a number. Text holding escapes is read
// decoded as well ("%2B86%20138…", "\u0031…", "&#49;…", "138\t1234…": escapesDecoded); base64
// and hex are not read (hex ids and digests would be refused). A number printed in scientific
// notation, as programs print one they read as a float ("1.3812345678e+10"), is read too
// (sciPhoneAt), and so is one printed with its thousands grouped ("13,812,345,678":
// groupedPhoneAt). Letters never read as digits ("l38…" with an
// L, "…8OOO" with O's): a number spelled to dodge a reader is no writing of one. The number
// must stand on its own: one glued to a digit, or to a hexadecimal word before it ("3a8f", "0xd")
// or after it ("b", "e4b2") is part of an identifier, not a phone — so hexadecimal device ids, UUIDs
// and a 15-digit IMEI starting with 86 are not phone-like, while "tel:13812345678", "tel13812345678",
// "user13812345678", "phone13812345678", "ID13812345678", "+86 138 1234 5678", "(138)12345678", "138_1234_5678",
// "１３８　１２３４　５６７８", "13812345678ios", "tel13812345678x" and "order-13812345678-2" are. A
// UUID's last group of twelve digits is no number written with the trunk 0 either (uuidTailAt),
// though errors and logs mask it. A reading with a group of 9 or 10 digits
// beside others is not ("evt_1733390000_5", a unix second and a sequence number): no one writes a
// phone number so. Errors and log lines mask all of those too, and numbers glued to any letter
// ("a13812345678", "13812345678b"): see reading.

// PhoneMask is what Excerpt shows instead of a phone-like number.
const PhoneMask = "<phone>"

var phoneMask = []byte(PhoneMask)

// maxPhoneDigits is the most digits a phone-like number has: 0086 and a 13-digit IoT number.
const maxPhoneDigits = 17

// maxPhoneBytes is about the bytes a phone-like number spans as people write it: a '+' and digits
// of up to 4 bytes each with up to 3 separators of up to 3 bytes between any two of them — or,
// percent-escaped, 3 bytes for each ASCII byte of one. Longer runs of separators make longer
// numbers, which redact trims where they cross its cut.
const maxPhoneBytes = 3 + maxPhoneDigits*4 + (maxPhoneDigits-1)*3*3

// MaxErrorLen bounds the message of a *FieldError, whatever the input (see FieldError.Error).
const MaxErrorLen = 1024

// ContainsPhone reports whether s contains a phone-like number (see the package's rules above):
// what the decoders refuse in a free-text field. It is a byte scan that allocates nothing.
func ContainsPhone(s string) bool {
	return mayHoldPhone(s) && exactPhoneScan(s, written)
}

// mayShowPhone reports whether s holds digits that Excerpt and MaskPhones mask: a phone-like
// number, or one split as no one writes a phone (anyReading).
func mayShowPhone(s string) bool {
	return mayHoldPhone(s) && exactPhoneScan(s, anyReading)
}

// reading says which groupings of digits count as a phone number. Refusing a value costs its
// sender an event, masking it costs nothing: the decoders refuse numbers as people write them
// (written), while what an error or a log line shows is masked wherever the digits could be read
// as one (anyReading), "1.3812348000" and "a13812345678b" too.
type reading bool

const (
	written    reading = false // not when a group of 9 or 10 digits stands beside others
	anyReading reading = true
)

// exactPhoneScan is ContainsPhone (or mayShowPhone) without the quick test, for a caller that
// made it: s as it is, and decoded if it holds escapes (escapesDecoded).
func exactPhoneScan(s string, r reading) bool {
	if _, _, ok := nextPhone(s, 0, r); ok {
		return true
	}
	if !hasEscape(s) {
		return false
	}
	d, ok := escapesDecoded(s)
	if !ok {
		return false
	}
	_, _, found := nextPhone(d, 0, r)
	return found
}

// escapeStart reports whether c may start an escape that escapesDecoded reads.
func escapeStart(c byte) bool { return c == '%' || c == '\\' || c == '&' }

func hasEscape(s string) bool { return strings.IndexAny(s, `%\&`) >= 0 }

// escapesDecoded returns s with the escapes that every tool decodes on the way to a reader decoded
// — URLs' and forms' %XX, JSON's and JavaScript's \uXXXX (a surrogate pair as one character),
// \u{…} and \UXXXXXXXX, JavaScript's escape() of a character outside Latin-1 (%uXXXX),
// \t, \xXX and the octal \NNN of C, Python and CEL string literals, HTML's &#NN; and &#xHH; — up to three rounds, for "%252B86…" and "%5Cu0031", and whether
// there were any. Other bytes, and a '%', '\' or '&' that starts no escape, stay as they are.
// Encodings that no one reads without a decoder they choose (base64, hex) are not phone-like:
// hex and base64 ids and digests would be refused with them.
func escapesDecoded(s string) (string, bool) {
	changed := false
	for range 3 {
		d, ok := unescapeOnce(s)
		if !ok {
			break
		}
		s, changed = d, true
	}
	return s, changed
}

// unescapeOnce decodes the escapes of s once and reports whether it found any.
func unescapeOnce(s string) (string, bool) {
	i := strings.IndexAny(s, `%\&`)
	if i < 0 {
		return s, false
	}
	var b []byte
	for i < len(s) {
		if escapeStart(s[i]) {
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[:i]...)
			}
			var n int
			if b, n = appendEscaped(b, s, i); n > 0 {
				i += n
				continue
			}
		}
		if b != nil {
			b = append(b, s[i])
		}
		i++
	}
	if b == nil || len(b) == len(s) {
		return s, false // every '%', '\\' and '&' stood for itself
	}
	return string(b), true
}

// appendEscaped appends to b what the escape at s[i] stands for and returns its length, or b as
// it is and 0 if no escape starts there.
func appendEscaped(b []byte, s string, i int) ([]byte, int) {
	switch {
	case s[i] == '%' && hexAt(s, i+1, 2):
		return append(b, byte(hexNumber(s[i+1:i+3]))), 3
	case s[i] == '\\' && i+1 < len(s) && s[i+1] == 't':
		return append(b, '\t'), 2 // a tab, a separator (isPhoneSep)
	case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'x' && hexAt(s, i+2, 2):
		return append(b, byte(hexNumber(s[i+2:i+4]))), 4
	case s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]):
		return append(b, (s[i+1]-'0')<<6|(s[i+2]-'0')<<3|(s[i+3]-'0')), 4
	case s[i] == '%' && i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') && hexAt(s, i+2, 4):
		return utf8.AppendRune(b, rune(hexNumber(s[i+2:i+6]))), 6 // JavaScript's escape(): %uFF11
	case s[i] == '\\' && i+9 < len(s) && s[i+1] == 'U' && hexAt(s, i+2, 8):
		if r := rune(hexNumber(s[i+2 : i+10])); utf8.ValidRune(r) {
			return utf8.AppendRune(b, r), 10
		}
	case s[i] == '\\' && i+3 < len(s) && s[i+1] == 'u' && s[i+2] == '{':
		if k := strings.IndexByte(s[i+3:min(len(s), i+10)], '}'); k > 0 && hexAt(s, i+3, k) {
			if r := rune(hexNumber(s[i+3 : i+3+k])); utf8.ValidRune(r) {
				return utf8.AppendRune(b, r), k + 4
			}
		}
	case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'u' && hexAt(s, i+2, 4):
		r := rune(hexNumber(s[i+2 : i+6]))
		if utf16.IsSurrogate(r) && i+11 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' && hexAt(s, i+8, 4) {
			if p := utf16.DecodeRune(r, rune(hexNumber(s[i+8:i+12]))); p != utf8.RuneError {
				return utf8.AppendRune(b, p), 12
			}
		}
		return utf8.AppendRune(b, r), 6
	case s[i] == '&' && i+3 < len(s) && s[i+1] == '#':
		j, base := i+2, rune(10)
		if s[j] == 'x' || s[j] == 'X' {
			j, base = j+1, 16
		}
		r, k := rune(0), j
		for k < len(s) && k-j < 7 && hexLower[s[k]] != 0 && (base == 16 || isDigitByte(s[k])) {
			r = r*base + rune(unhex(s[k]))
			k++
		}
		if k > j && k < len(s) && s[k] == ';' {
			return utf8.AppendRune(b, r), k + 1 - i
		}
	}
	return b, 0
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// hexAt reports whether s holds n hexadecimal digits from s[i].
func hexAt(s string, i, n int) bool {
	if i+n > len(s) {
		return false
	}
	for k := i; k < i+n; k++ {
		if hexLower[s[k]] == 0 {
			return false
		}
	}
	return true
}

// hexNumber is the value of the hexadecimal digits h (at most 8; hexAt checked them).
func hexNumber(h string) int {
	v := 0
	for i := 0; i < len(h); i++ {
		v = v<<4 | int(unhex(h[i]))
	}
	return v
}

func unhex(c byte) byte {
	if c = hexLower[c]; c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// Excerpt returns s as an error message or a log line may show a caller's value: every phone-like
// number replaced by PhoneMask, at most about n bytes of the rest, and quoted with Go escapes
// (strconv.Quote), so that control characters, quotes and newlines cannot forge a log line and
// invalid UTF-8 shows as \x escapes — or as U+FFFD where an escape's last hex digit would join
// the digits after it into a phone-like number. A shortened value ends in "…" inside the quotes. The result is
// valid UTF-8 and at most 4n+8 bytes long.
func Excerpt(s string, n int) string {
	b, cut := redact(make([]byte, 0, min(len(s), n+maxPhoneBytes+4)+len(PhoneMask)+len("…")), s, n)
	if cut {
		b = append(b, "…"...)
	}
	q := strconv.AppendQuote(make([]byte, 0, 4*len(b)+2), string(b))
	if mayShowPhone(string(q)) {
		// An escape ending in a digit ("\xb1", "\x01") joined the digits after it into a
		// phone-like number: "\xb1" and "0000000000" show as "\xb10000000000"; a quoted
		// backslash parted digits (printableOr). Such characters show as U+FFFD instead, which
		// joins and parts nothing.
		q = strconv.AppendQuote(q[:0], strings.Map(printableOr, string(b)))
	}
	return string(q)
}

// printableOr maps a character strconv.Quote would escape to U+FFFD (strings.Map passes invalid
// UTF-8 as utf8.RuneError too), a backslash too: quoted as two, a value's `2\u0031\u0033…` reads
// as 2, a backslash (a separator) and the escaped digits 13…, a number on its own.
func printableOr(r rune) rune {
	if r != '\\' && strconv.IsPrint(r) {
		return r
	}
	return utf8.RuneError
}

// MaskPhones returns s with every phone-like number replaced by PhoneMask, and nothing else
// changed: for text that is already bounded and escaped (an error message built elsewhere) on its
// way out.
func MaskPhones(s string) string {
	if !mayShowPhone(s) {
		return s
	}
	return string(appendMasked(make([]byte, 0, len(s)), s))
}

// appendMasked appends s to b with every phone-like number replaced by PhoneMask. Text whose
// numbers show only once its escapes are decoded is appended decoded, then masked — and what the
// decoding made of other escapes that no text on its way out may hold (invalid UTF-8 from "\xf8",
// a line break from "\x0a", a bidi control from "\u202e") shows as U+FFFD.
func appendMasked(b []byte, s string) []byte {
	if hasEscape(s) {
		if d, ok := escapesDecoded(s); ok {
			if _, _, found := nextPhone(d, 0, anyReading); found {
				m := strings.Map(shownOr, string(appendMaskedAsIs(nil, d)))
				if _, _, found := nextPhone(m, 0, anyReading); found {
					return appendMaskedAsIs(b, m) // a control character that parted digits no longer does
				}
				return append(b, m...)
			}
		}
	}
	return appendMaskedAsIs(b, s)
}

// shownOr maps a control character, a bidi control and invalid UTF-8 (which strings.Map passes as
// utf8.RuneError) to U+FFFD.
func shownOr(r rune) rune {
	if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
		return utf8.RuneError
	}
	return r
}

// appendMaskedAsIs appends s to b with every phone-like number (as written, escapes not decoded)
// replaced by PhoneMask.
func appendMaskedAsIs(b []byte, s string) []byte {
	i := 0
	for {
		ps, pe, ok := nextPhone(s, i, anyReading)
		if !ok {
			return append(b, s[i:]...)
		}
		b = append(append(b, s[i:ps]...), PhoneMask...)
		i = pe
	}
}

// ShowName returns a name (a JSON member name, a URL path, a method) as an error message shows it:
// as it is when it is at most n bytes of printable ASCII without spaces, quotes, backslashes, a
// phone-like number or a digit before its first letter (edgeDigit) — so `colour: unknown field` reads
// naturally — and Excerpt(s, n) otherwise.
func ShowName(s string, n int) string {
	if s == "" || len(s) > n {
		return Excerpt(s, n)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return Excerpt(s, n)
		}
	}
	if mayShowPhone(s) || edgeDigit(s) {
		return Excerpt(s, n)
	}
	return s
}

// edgeDigit reports whether s has a digit before its first letter: digits that join those a
// message puts before the name — "line 1: " and "4294967296label" read as the number
// 1 4294967296 — where the quotes of Excerpt split them. (A message puts no digits right after a
// name: "riskflow.example:443 (see …" stays as it is.)
func edgeDigit(s string) bool {
	first := strings.IndexFunc(s, func(r rune) bool { return r|0x20 >= 'a' && r|0x20 <= 'z' })
	if first < 0 {
		first = len(s)
	}
	return strings.ContainsAny(s[:first], "0123456789")
}

// redact appends to b the first n bytes (about) of s with phone-like numbers masked, and reports
// whether it left part of s out. Only a window of s is scanned, so a huge value costs no more
// than a short one; a cut never leaves a partial number behind (its digits could be most of a
// phone the scan did not see whole).
func redact(b []byte, s string, n int) ([]byte, bool) {
	window := s
	if k := n + maxPhoneBytes + 4; len(s) > k {
		// A number as people write it that starts within the first n bytes ends inside the
		// window, with the byte after it: what is masked below is what scanning all of s would
		// mask. One spread wider (long runs of separators) crosses the cut at n, where trimCut
		// takes its digits back off. The window ends at a rune boundary.
		for k > n+maxPhoneBytes+1 && !utf8.RuneStart(s[k]) {
			k--
		}
		window = s[:k]
	}
	window = joinLines(window) // a number written across lines is one number
	start := len(b)
	if mayHoldPhone(window) {
		b = appendMasked(b, window)
	} else {
		b = append(b, window...)
	}
	if len(b)-start <= n && len(window) == len(s) {
		return b, false
	}
	cut := start + min(len(b)-start, n)
	// A cut inside a mask keeps the whole mask: "<pho…" would only puzzle the reader.
	if m := bytes.LastIndex(b[start:min(len(b), cut+len(PhoneMask)-1)], phoneMask); m >= 0 && start+m < cut {
		cut = max(cut, start+m+len(PhoneMask))
	}
	if cut == len(b) && len(window) == len(s) {
		return b, false
	}
	b = trimCut(b, start, cut)
	if mayShowPhone(string(b[start:])) {
		// trimCut backs over plain digits only: a longer number written in escapes, cut after
		// its eleventh digit ("%31%30…%30" of twelve), reads as a phone once decoded. What is
		// left is masked as MaskPhones would mask it.
		kept := string(b[start:])
		b = appendMasked(b[:start], kept)
	}
	return b, true
}

// joinLines returns s, one value a caller sent, with the line breaks inside a number written across
// lines as spaces, byte for byte, so that the number is masked; every other line break stays. Line
// breaks split numbers in text of many lines (the lines of a file), but a value holding
// "138\n1234\n5678" is the number on three lines, and its excerpt showed it escaped
// ("138\\n1234\\n5678") in an error and a log line.
func joinLines(s string) string {
	flat, ok := flatLines(s)
	if !ok || !mayHoldPhone(flat) {
		return s
	}
	var b []byte
	for i := 0; ; {
		ps, pe, found := nextPhone(flat, i, anyReading)
		if !found {
			break
		}
		if flat[ps:pe] != s[ps:pe] {
			if b == nil {
				b = []byte(s)
			}
			copy(b[ps:pe], flat[ps:pe])
		}
		i = pe
	}
	if b == nil {
		return s
	}
	return string(b)
}

// flatLines returns s with its line breaks (CR, LF, VT, FF, NEL, U+2028 and U+2029) as spaces,
// byte for byte, and whether it held any.
func flatLines(s string) (string, bool) {
	if strings.IndexAny(s, "\n\r\v\f\u0085\u2028\u2029") < 0 {
		return s, false
	}
	b := []byte(s)
	for i := 0; i < len(b); {
		switch {
		case b[i] == '\n' || b[i] == '\r' || b[i] == '\v' || b[i] == '\f':
			b[i] = ' '
			i++
		case b[i] == 0xC2 && i+1 < len(b) && b[i+1] == 0x85:
			b[i], b[i+1] = ' ', ' '
			i += 2
		case b[i] == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9):
			b[i], b[i+1], b[i+2] = ' ', ' ', ' '
			i += 3
		default:
			i++
		}
	}
	return string(b), true
}

// trimCut cuts b at end, backing up to a UTF-8 boundary and over any digits and separators left
// at the cut, so that the tail of a cut number is never shown.
func trimCut(b []byte, start, end int) []byte {
	for end > start && end < len(b) && !utf8.RuneStart(b[end]) {
		end--
	}
	for end > start && !bytes.HasSuffix(b[start:end], phoneMask) { // a mask's '>' is no separator to trim
		r, w := utf8.DecodeLastRune(b[start:end])
		if r < utf8.RuneSelf && (isDigitByte(byte(r)) || isPhoneSep(byte(r))) || r >= utf8.RuneSelf && (isWideSep(r) || isUnicodeDigit(r)) {
			end -= w
		} else {
			break
		}
	}
	return b[:end]
}

// nextPhone finds the first phone-like number (as r reads them) in s that starts at or after byte
// from (which must not be inside a run of digits) and returns its span, including a leading '+'.
func nextPhone(s string, from int, r reading) (start, end int, ok bool) {
	for i := from; i < len(s); {
		if _, w := digitAt(s, i); w == 0 {
			i++
			continue
		}
		// i starts a run of digits: a number may start here unless it is glued to an identifier.
		if !gluedBefore(s, i, r) {
			if n := ipv4At(s, i); n > 0 {
				i += n // an address, not a phone: "127.0.0.1:19092", "192.168.100.10"
				continue
			}
			if e, ok := sciPhoneAt(s, i); ok {
				return i, e, true // "1.3812345678e+10": a number printed as a float
			}
			if e, ok := groupedPhoneAt(s, i, r); ok {
				return i, e, true // "13,812,345,678": a number printed with its thousands grouped
			}
			if r == written && uuidTailAt(s, i) {
				i += 12 // a device id's last group, not a number written with the trunk 0
				continue
			}
			if e, ok := matchPhone(s, i, r); ok {
				return i - plusBefore(s, i), e, true
			}
		}
		for i < len(s) { // skip the rest of the run
			_, w := digitAt(s, i)
			if w == 0 {
				break
			}
			i += w
		}
	}
	return 0, 0, false
}

// uuidTailAt reports whether the run of digits at s[i] is the last group of a UUID: twelve ASCII
// digits right after four groups of 8, 4, 4 and 4 hexadecimal digits joined by '-', with no letter
// or digit around the whole. Such a group starting 01[3-9] reads as the trunk 0 before a mobile
// number ("7E21487C-74E1-401F-BDEB-014109473581"): about one random UUID in 31,000, an iOS
// device id whose every event was refused. The written reading lets it through; errors and logs
// still mask it (the reading of anything).
func uuidTailAt(s string, i int) bool {
	if i < 24 || i+12 > len(s) || s[i-1] != '-' {
		return false
	}
	for k := i; k < i+12; k++ {
		if !isDigitByte(s[k]) {
			return false
		}
	}
	if i+12 < len(s) && isAlnum(s[i+12]) {
		return false
	}
	j := i - 1 // the '-' after the group before
	for g, n := range [4]int{4, 4, 4, 8} {
		start := j - n
		if start < 0 {
			return false
		}
		for k := start; k < j; k++ {
			if hexLower[s[k]] == 0 {
				return false
			}
		}
		if g < 3 {
			if start == 0 || s[start-1] != '-' {
				return false
			}
			start--
		}
		j = start
	}
	return j == 0 || !isAlnum(s[j-1])
}

// ipv4At returns the length of the IPv4 address in dotted-decimal form — four ASCII groups of 1 to
// 3 digits, each at most 255 and without a leading zero, joined by single dots — that starts at s[i], with its ":port" if
// one follows, or 0 if none starts there or the text goes on with another dot or digit. Such an
// address (a broker's or a server's in an error, a client's in a field) is not a phone number,
// although its 11 digits may start with 1; nobody writes a phone as four groups of at most three.
func ipv4At(s string, i int) int {
	if i > 0 && s[i-1] == '.' {
		return 0 // inside a longer dotted run
	}
	j := i
	for g := range 4 {
		if g > 0 {
			if j >= len(s) || s[j] != '.' {
				return 0
			}
			j++
		}
		v, k := 0, j
		for k < len(s) && k-j < 3 && isDigitByte(s[k]) {
			v = v*10 + int(s[k]-'0')
			k++
		}
		if k == j || v > 255 || k < len(s) && isDigitByte(s[k]) || s[j] == '0' && k-j > 1 {
			return 0 // no group, too large, too long, or a leading zero (not how addresses are written)
		}
		j = k
	}
	if j < len(s) && s[j] == ':' {
		p, k := 0, j+1
		for k < len(s) && k-j <= 5 && isDigitByte(s[k]) {
			p = p*10 + int(s[k]-'0')
			k++
		}
		if k > j+1 && p <= 65535 && (k == len(s) || !isDigitByte(s[k])) {
			j = k
		}
	}
	if j < len(s) && (s[j] == '.' || isDigitByte(s[j])) {
		return 0
	}
	return j - i
}

// minSciDigits is the fewest digits a number in scientific notation shows to be read as a phone
// (sciPhoneAt): a number block's worth ("1.381234e+10" is 13812340000); "1.5e10" is none.
const minSciDigits = 7

// sciPhoneAt returns the end of a phone number written in scientific notation from s[i], as a
// program prints a number it read as a floating-point one — Go's fmt.Sprint of a JSON number
// decoded into an any, Java's Double.toString, C's %e: "1.3812345678e+10", "1.3812345678E10",
// "8.613812345678e+12" (+86), and "1.38123456e+10" for 13812345600 (trailing zeros are left
// out). The mantissa is one ASCII digit, a '.' and at least minSciDigits digits in all; the
// exponent makes them a phone number (phoneDigits) with the zeros it adds.
func sciPhoneAt(s string, i int) (int, bool) {
	if i+1 >= len(s) || !isDigitByte(s[i]) || s[i+1] != '.' {
		return 0, false
	}
	var d [maxPhoneDigits]byte
	d[0] = s[i]
	n := 1
	j := i + 2
	for ; j < len(s) && isDigitByte(s[j]); j++ {
		if n == len(d) {
			return 0, false
		}
		d[n] = s[j]
		n++
	}
	if n < minSciDigits || j == len(s) || s[j] != 'e' && s[j] != 'E' {
		return 0, false
	}
	j++
	if j < len(s) && s[j] == '+' {
		j++
	}
	exp, k := 0, j
	for ; k < len(s) && k-j < 2 && isDigitByte(s[k]); k++ {
		exp = exp*10 + int(s[k]-'0')
	}
	if k == j || k < len(s) && isDigitByte(s[k]) || exp+1 < n || exp+1 > len(d) {
		return 0, false
	}
	for ; n < exp+1; n++ {
		d[n] = '0'
	}
	return k, phoneDigits(d[:n], false, n, written)
}

// groupedPhoneAt returns the end of a phone number written from s[i] with its digits grouped in
// threes, as a program or a spreadsheet prints a number it holds as one — JavaScript's
// toLocaleString, Excel's #,##0, humanize.Comma: "13,812,345,678", "8,613,812,345,678" (+86), or
// "13'812'345'678" as in Switzerland: a first group of 1 to 3 digits (of any script, as digitAt reads
// them), then groups of exactly three, each after the same separator (groupSepAt: a comma or an
// apostrophe, ASCII, typographic or full-width), and no digit after the last. Commas
// otherwise split numbers (isPhoneSep): "[1, 5, 10]" is a list, and so, written, is a grouping
// right inside brackets ("[10,200,300,400]" in a rule is four numbers); read any way (what an error
// or a log line shows), it is masked there too.
func groupedPhoneAt(s string, i int, r reading) (int, bool) {
	var d [maxPhoneDigits]byte
	n, j := 0, i
	for j < len(s) {
		c, w := digitAt(s, j)
		if w == 0 {
			break
		}
		if n == 3 {
			return 0, false
		}
		d[n] = c
		n++
		j += w
	}
	sep := groupSepAt(s, j)
	if sep == "" {
		return 0, false
	}
	for strings.HasPrefix(s[j:], sep) {
		k, m := j+len(sep), 0
		var g [3]byte
		for m < 3 && k < len(s) {
			c, w := digitAt(s, k)
			if w == 0 {
				break
			}
			g[m] = c
			m++
			k += w
		}
		if m < 3 || k < len(s) && digitWidth(s, k) > 0 {
			break
		}
		if n+3 > len(d) {
			return 0, false
		}
		n += copy(d[n:], g[:])
		j = k
	}
	if r == written && (i > 0 && strings.IndexByte("[({", s[i-1]) >= 0 || j < len(s) && strings.IndexByte("])}", s[j]) >= 0 || hexWordAfter(s, j)) {
		return 0, false
	}
	return j, n > 3 && phoneDigits(d[:n], false, n, r)
}

// groupSepAt returns the thousands separator groupedPhoneAt reads at s[j] — a comma, an apostrophe
// or '’', or the full-width comma and apostrophe a Chinese input method types in full-width mode
// ("１３，８１２，３４５，６７８") — or "".
func groupSepAt(s string, j int) string {
	if j >= len(s) {
		return ""
	}
	switch s[j] { // by its first byte: this runs after every short run of digits
	case ',':
		return ","
	case '\'':
		return "'"
	case 0xE2, 0xEF: // '’' (E2 80 99); '，' and '＇' (EF BC 8C, EF BC 87)
		for _, sep := range [...]string{"’", "，", "＇"} {
			if strings.HasPrefix(s[j:], sep) {
				return sep
			}
		}
	}
	return ""
}

// digitWidth is the width of the digit at s[k] (digitAt), 0 if none.
func digitWidth(s string, k int) int {
	_, w := digitAt(s, k)
	return w
}

// mayHoldPhone is the quick test that rules out most ids (UUIDs, hex digests, ids holding a date)
// before the exact scan (see quickScan).
func mayHoldPhone(s string) bool {
	seen, longest := quickScan(s)
	return quickMayHold(s, seen, longest)
}

// quickMayHold is mayHoldPhone's verdict on quickScan's result: 11 digits in a stretch, a byte the
// count cannot judge, or a number of a block's worth of digits with an exponent after it
// (sciPhoneAt: "1.38123456e+10" shows fewer than 11).
func quickMayHold(s string, seen uint8, longest int) bool {
	return longest >= 11 || seen&byteExact != 0 || longest >= minSciDigits && strings.ContainsAny(s, "eE")
}

// quickScan is one pass over s for what rules out a phone-like number: a phone-like number has at
// least 11 digits with only separators between them, and its first digit (0, 1 or 8: see
// phoneDigits) starts a run of digits that no digit comes right before (nextPhone; whether a
// letter right before glues it to an id is left to the exact scan).
// longest is the most digits counted, in a stretch of digits and separators, from the first digit
// there that may start one: under 11, s holds no phone-like number of ASCII digits. seen is the
// union of the byteBits of s: whether it holds a control character, or a byte the count cannot
// judge (byteExact: the start of a character outside ASCII, which may be a digit or a separator,
// or a '%', '\\' or '&', which may start an escaped one).
//
// The pass has no branches, and from byte to byte depends on little more than two running values
// (a few cycles per byte): checkText runs it on every free-text field of every event.
func quickScan(s string) (seen uint8, longest int) {
	started, run, prev := 0, 0, uint8(0)
	for i := 0; i < len(s); i++ {
		c := byteBits[s[i]]
		seen |= c
		keep := -int(c >> byteKeepShift & 1) // a digit or a separator: the stretch goes on
		start := int(c>>byteStartShift&1) &^ int(prev&byteDigit)
		started = (started | start) & keep
		run = (run + int(c&byteDigit)&started) & keep
		longest = max(longest, run)
		prev = c
	}
	return seen, longest
}

// Bits of byteBits, quickScan's byte classes.
const (
	byteDigit   = 1 << iota // an ASCII digit
	byteKeep                // a digit or a separator (isPhoneSep, '+', and the comma and apostrophe of groupedPhoneAt): a stretch of digits goes on
	byteStart               // 0, 1 or 8: may be the first digit of a phone-like number
	byteAlnum               // an ASCII letter or digit (checkText: a value holding one is not blank)
	byteControl             // below 0x20, or 0x7f
	byteExact               // ≥ 0xC0 (starts a character outside ASCII) or what starts an escape ('%', '\\', '&'): leave it to the exact scan

	byteKeepShift  = 1
	byteStartShift = 2
)

var byteBits = func() (t [256]uint8) {
	for c := range 256 {
		b := byte(c)
		switch {
		case isDigitByte(b):
			t[c] = byteDigit | byteKeep | byteAlnum
			if b == '0' || b == '1' || b == '8' {
				t[c] |= byteStart
			}
		case isAlnum(b):
			t[c] = byteAlnum
		case isPhoneSep(b) || b == ',' || b == '\'':
			t[c] = byteKeep // the comma and the apostrophe group a number's thousands (groupedPhoneAt)
		case b < 0x20 || b == 0x7f:
			t[c] = byteControl
		case b >= 0xC0:
			t[c] = byteExact
		}
		if b == '\t' {
			t[c] |= byteControl // a separator, and a control character free text refuses
		}
		if escapeStart(b) {
			t[c] |= byteExact
		}
	}
	return t
}()

// matchPhone reads groups of digits joined by short runs of separators from i (the start of a
// run of digits) and returns the end of the longest reading that is a phone number and, written,
// is not followed by a hexadecimal word ("13812345678b" is an id; read any way, it is masked).
func matchPhone(s string, i int, r reading) (int, bool) {
	var digits [maxPhoneDigits]byte
	n, firstGroup, best := 0, 0, -1
	groups, longGroup := 0, false
	plus := plusBefore(s, i) > 0
	// A run of separators that are all invisible (isInvisible) splits nothing: the digits after it
	// go on the group before, as a reader sees them ("1\u200b3812345678" is not 1 + 10 digits).
	from, joined := 0, false
	for j := i; ; {
		if !joined {
			from = n
			groups++
		}
		for j < len(s) {
			d, w := digitAt(s, j)
			if w == 0 {
				break
			}
			if n == len(digits) {
				return best, best >= 0
			}
			digits[n] = d
			n++
			j += w
		}
		if groups == 1 {
			firstGroup = n
		}
		long := longGroup || n-from == 9 || n-from == 10
		// Nobody writes a number apart as 10+1 or 9+2 digits, while ids often join a unix second
		// and a sequence number so ("evt_1733390000_5"): written, such a reading is not a phone.
		if (r == anyReading || !hexWordAfter(s, j)) && (r == anyReading || !long || groups == 1) && phoneDigits(digits[:n], plus, firstGroup, r) {
			best = j
		}
		k, visible := j, false
		for k < len(s) {
			w := sepAt(s, k)
			if w == 0 {
				break
			}
			visible = visible || !invisibleAt(s, k)
			k += w
		}
		if joined = !visible; !joined {
			longGroup = long // the group is complete
		}
		if k == j || k == len(s) {
			break
		}
		if _, w := digitAt(s, k); w == 0 {
			break
		}
		j = k
	}
	return best, best >= 0
}

// phoneDigits reports whether d (the digits of a number, separators removed) is a mainland mobile
// number with an optional country prefix, or the trunk prefix 0 that a landline dials before one
// (013812345678). A bare 86 prefix counts before an 11-digit number, or when written apart
// (86 138…) or after '+': a 15-digit run starting with 86 is an IMEI. The trunk 0 counts before a
// number written whole, as r reads them: a UUID's first two groups of digits
// ("01503091-8591-…", an iOS device id) read 0 + 11 digits too.
func phoneDigits(d []byte, plus bool, firstGroup int, r reading) bool {
	switch {
	case len(d) >= 4 && d[0] == '0' && d[1] == '0' && d[2] == '8' && d[3] == '6':
		d = d[4:]
	case len(d) >= 2 && d[0] == '8' && d[1] == '6' && (plus || firstGroup == 2 || len(d) == 13):
		d = d[2:]
	case len(d) == 12 && d[0] == '0' && d[1] == '1' && d[2] >= '3' && (r == anyReading || firstGroup == 12):
		d = d[1:] // mobile numbers start 13 to 19
	}
	return len(d) == 11 && d[0] == '1' || len(d) == 13 && d[0] == '1' && d[1] == '4'
}

// digitAt returns the digit at s[i] as an ASCII byte and its width: 1 for 0-9, the UTF-8 length
// of a decimal digit of another script (isUnicodeDigit: full-width ０-９, what Chinese input
// methods type in full-width mode, among them), 0 for anything else.
func digitAt(s string, i int) (byte, int) {
	c := s[i]
	if c >= '0' && c <= '9' {
		return c, 1
	}
	if c < 0xC0 { // another ASCII character, or inside a multi-byte one
		return 0, 0
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if v, ok := unicodeDigit(r); ok {
		return '0' + v, w
	}
	return 0, 0
}

// ndRanges are the ranges of Unicode's decimal digits (category Nd). Each script's digits are
// encoded as one run from 0 to 9, and runs of several sets (the mathematical digits) follow each
// other, so a digit's value is its distance from its range's start, modulo 10 (redact_test.go
// checks the table holds nothing else).
var ndRanges = func() (rs [][2]rune) {
	for _, r := range unicode.Nd.R16 {
		rs = append(rs, [2]rune{rune(r.Lo), rune(r.Hi)})
	}
	for _, r := range unicode.Nd.R32 {
		rs = append(rs, [2]rune{rune(r.Lo), rune(r.Hi)})
	}
	return rs
}()

// otherDigits are the characters Unicode files as other numbers (No) while each shows one digit —
// superscript, subscript, circled, parenthesized, with a full stop or a comma, dingbats, and the
// circled and parenthesized Chinese numerals — as ranges whose first character is worth v
// (Unicode's Numeric_Type=Digit, as unicodedata.digit lists them, and ㈠-㈨, ㊀-㊈). "①③⑧…" and
// "¹³⁸…" read as digits to anybody. Sorted by lo.
var otherDigits = [...]struct {
	lo, hi rune
	v      byte
}{
	{0xb2, 0xb3, 2}, {0xb9, 0xb9, 1}, {0x1369, 0x1371, 1}, {0x19da, 0x19da, 1},
	{0x2070, 0x2070, 0}, {0x2074, 0x2079, 4}, {0x2080, 0x2089, 0},
	{0x2460, 0x2468, 1}, {0x2474, 0x247c, 1}, {0x2488, 0x2490, 1}, {0x24ea, 0x24ea, 0},
	{0x24f5, 0x24fd, 1}, {0x24ff, 0x24ff, 0}, {0x2776, 0x277e, 1}, {0x2780, 0x2788, 1},
	{0x278a, 0x2792, 1}, {0x3220, 0x3228, 1}, {0x3280, 0x3288, 1},
	{0x10a40, 0x10a43, 1}, {0x10e60, 0x10e68, 1}, {0x11052, 0x1105a, 1},
	{0x1f100, 0x1f100, 0}, {0x1f101, 0x1f10a, 0},
}

// otherDigit returns the value of r if it is one of otherDigits.
func otherDigit(r rune) (byte, bool) {
	if r < otherDigits[0].lo || r > otherDigits[len(otherDigits)-1].hi {
		return 0, false
	}
	lo, hi := 0, len(otherDigits)
	for lo < hi { // the first range ending at or after r
		m := int(uint(lo+hi) >> 1)
		if otherDigits[m].hi < r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(otherDigits) || r < otherDigits[lo].lo {
		return 0, false
	}
	return otherDigits[lo].v + byte(r-otherDigits[lo].lo), true
}

// unicodeDigit returns the value of r if it is a decimal digit of any script, a character showing
// one digit (otherDigit), or a Chinese numeral (hanziDigit).
func unicodeDigit(r rune) (byte, bool) {
	if r >= 0x3007 && r <= 0x96f6 { // 〇 … 零: the numerals' span
		if v, ok := hanziDigit(r); ok {
			return v, true
		}
	}
	lo, hi := 0, len(ndRanges)
	for lo < hi { // the first range ending at or after r
		m := int(uint(lo+hi) >> 1)
		if ndRanges[m][1] < r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(ndRanges) || r < ndRanges[lo][0] {
		return otherDigit(r)
	}
	return byte((r - ndRanges[lo][0]) % 10), true
}

func isUnicodeDigit(r rune) bool { _, ok := unicodeDigit(r); return ok }

// hanziDigit returns the value of a Chinese numeral: the common ones (〇/零 to 九), 幺 (how 1 is
// read out in a phone number) and the others of the radio alphabet (两 2, 拐 7, 勾 9, 洞 0), and
// the financial ones (壹 to 玖, simplified and traditional).
// Unicode files them as letters, not digits, but a number written with them ("一三八一二三四五六七八")
// is how a phone gets past a filter of digits, and is as plain to a reader.
func hanziDigit(r rune) (byte, bool) {
	switch r {
	case '〇', '零', '洞':
		return 0, true
	case '一', '幺', '壹':
		return 1, true
	case '二', '贰', '貳', '两', '兩':
		return 2, true
	case '三', '叁', '參', '叄':
		return 3, true
	case '四', '肆':
		return 4, true
	case '五', '伍':
		return 5, true
	case '六', '陆', '陸':
		return 6, true
	case '七', '柒', '拐':
		return 7, true
	case '八', '捌':
		return 8, true
	case '九', '玖', '勾':
		return 9, true
	}
	return 0, false
}

// gluedBefore reports whether the character before s[i] glues a number starting at i to an
// identifier, as r reads it: a digit of any script always; written, a hexadecimal letter too when
// the word it ends is hexadecimal (a hex device id or digest holds long runs of digits:
// "3a8f13812345678b", "0xd13812345678"), while a word with any other letter is a label glued to
// the number, whatever its last letter ("tel13812345678", "user13812345678", "phone13812345678",
// "ID13812345678"); read any way (what an error or a log line shows), no letter is.
func gluedBefore(s string, i int, r reading) bool {
	switch {
	case i == 0:
		return false
	case s[i-1] < utf8.RuneSelf:
		c := s[i-1]
		return isDigitByte(c) || r == written && isHexLetter(c) && hexWordBefore(s, i)
	}
	c, _ := utf8.DecodeLastRuneInString(s[:i])
	return isUnicodeDigit(c)
}

func isHexLetter(c byte) bool { return c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// maxHexWord is how far back hexWordBefore looks: a longer run of hexadecimal characters is a
// hex id whatever comes before it (and the scan stays linear).
const maxHexWord = 64

// hexWordBefore reports whether the ASCII letters and digits right before s[i] are a hexadecimal
// word — only 0-9, a-f, A-F, after an optional 0x — rather than a label ending in a letter that
// happens to be a hexadecimal digit ("phone", "ID", "uid").
func hexWordBefore(s string, i int) bool {
	j := i
	for j > 0 && i-j < maxHexWord && (isDigitByte(s[j-1]) || isHexLetter(s[j-1])) {
		j--
	}
	switch {
	case j == 0 || i-j >= maxHexWord || !isAlnum(s[j-1]):
		return true
	case (s[j-1] == 'x' || s[j-1] == 'X') && j >= 2 && s[j-2] == '0' && (j == 2 || !isAlnum(s[j-3])):
		return true // 0x…
	}
	return false
}

// hexWordAfter reports whether the ASCII letters and digits from s[j] on are a hexadecimal word
// (one letter at least, only 0-9, a-f, A-F): a number glued to one is part of a hex id or a UUID
// ("13812345678b", "…13812345678e4b2…"), while one glued to any other letter is a number with a
// word after it ("13812345678ios", "tel13812345678x"), as a non-hexadecimal word before it is a
// label (hexWordBefore).
func hexWordAfter(s string, j int) bool {
	if j >= len(s) || !isAlnum(s[j]) {
		return false
	}
	k := j
	for k < len(s) && k-j < maxHexWord && (isDigitByte(s[k]) || isHexLetter(s[k])) {
		k++
	}
	return k-j >= maxHexWord || k == len(s) || !isAlnum(s[k])
}

// plusBefore returns the width of the '+' or full-width '＋' right before s[i], 0 if there is none.
func plusBefore(s string, i int) int {
	switch {
	case i >= 1 && s[i-1] == '+':
		return 1
	case i >= 3 && s[i-3:i] == "＋":
		return 3
	}
	return 0
}

// sepAt returns the width of the separator at s[i] (isPhoneSep, isWideSep), 0 if there is none.
func sepAt(s string, i int) int {
	if c := s[i]; c < utf8.RuneSelf {
		if isPhoneSep(c) {
			return 1
		}
		return 0
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if isWideSep(r) {
		return w
	}
	return 0
}

// isWideSep reports whether r, outside ASCII, may separate the digit groups of a written phone
// number: the ideographic space and the full-width forms of the ASCII separators (typed in
// full-width mode), the ideographic full stop ('。', typed for '.'), middle dots, every space (Zs:
// no-break, narrow no-break, typographic), every dash and hyphen (Pd: en dash, small and full-width
// hyphen-minus, wave dash), and the invisible characters that would hide a number from a search
// while it still reads as one (isInvisible: format characters, variation selectors, combining
// marks …). A run of invisible ones splits no group of digits (matchPhone). Like their ASCII
// cousins (isPhoneSep), the delimiters of lists and quotes ('，', '、', '；', '“') split numbers.
func isWideSep(r rune) bool {
	switch r {
	case '\u2212', '\u30fc', '\u2044', '\u2215', // minus, prolonged sound mark, fraction and division slashes
		'\u00b7', '\u30fb', '\uff65', '\u2027', '\u2022', '\u2219', '\u22c5', // middle dots, hyphenation point, bullets, dot operators
		'\u3002', '\uff61', // the ideographic full stop, what a Chinese input method types for '.'
		'（', '）', '＋', '－', '．', '／', '：', '＿', '＼':
		return true
	}
	return r >= '\u2000' && r <= '\u2015' || // typographic spaces, zero-width characters, hyphens and dashes
		unicode.In(r, unicode.Zs, unicode.Pd) || isInvisible(r)
}

// isInvisible reports whether r shows as nothing of its own: a format character (Cf), a variation
// selector, another default-ignorable code point (the combining grapheme joiner, Hangul fillers
// U+3164 and U+FFA0 that render blank, tags), or a combining mark, which only decorates the digit
// before it (an accent, an underline, the keycap of 1️⃣).
func isInvisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point, unicode.M)
}

// invisibleAt reports whether the character at s[i] is invisible (isInvisible).
func invisibleAt(s string, i int) bool {
	if s[i] < utf8.RuneSelf {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isInvisible(r)
}

func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isPhoneSep reports whether the ASCII character c may separate the digit groups of a written
// phone number: a space or a tab (a number copied from a table's cells, 138<TAB>1234<TAB>5678,
// reads as one), punctuation people write numbers with, and what joins the words of an id or a
// path. What delimits tokens — quotes, commas, semicolons, '|', '=', brackets other than
// parentheses and line breaks — splits numbers: a list ("[1, 5, 10, 20, 50, 100]" in a rule), a
// line number before a quoted value (`line 1: "0000000000"`), lines of a file.
func isPhoneSep(c byte) bool {
	switch c {
	case ' ', '\t', '-', '.', '(', ')', '/', '_', ':', '\\', '+':
		return true
	}
	return false
}

// Visible writes s's formatting characters (Unicode Cf: bidirectional overrides and isolates,
// zero-width spaces and joiners …) as \u escapes: a stored value as a terminal or a page shows
// it. The decoders refuse control characters but let these through, and printed as they are they
// reorder or hide what follows (an id ending in U+202E showed the rest of its row reversed).
func Visible(s string) string {
	if !strings.ContainsFunc(s, isFormatting) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isFormatting(r) {
			fmt.Fprintf(&b, "\\u%04X", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isFormatting(r rune) bool { return unicode.Is(unicode.Cf, r) }
