package schemas

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Phone numbers must never leave riskflow in plaintext, and the easiest way to leak one is to echo
// a caller's value in an error message or a log line: the caller may have put a number in any
// field, in any format. Every value an error shows therefore goes through Excerpt, which masks
// phone-like numbers, escapes and truncates; the decoder refuses free-text fields (ids, codes) that
// hold one, using the same detector (ContainsPhone).
//
// What counts as phone-like: a number that riskflow would accept as a phone (11 digits starting
// with 1, or a 13-digit IoT number starting with 14), optionally preceded by +86, 86 or 0086, and
// written with or without separators (space, '-', '.', '(' and ')', at most 3 in a row) between
// its digits; full-width digits (０-９) count as digits. It must stand on its own: a number glued
// to a letter or a digit is part of an identifier, not a phone — so hexadecimal device ids, UUIDs
// and a 15-digit IMEI starting with 86 are not phone-like, while "tel:13812345678",
// "+86 138 1234 5678", "(138)12345678" and "order-13812345678-2" are.

// PhoneMask is what Excerpt shows instead of a phone-like number.
const PhoneMask = "<phone>"

var phoneMask = []byte(PhoneMask)

// maxPhoneDigits is the most digits a phone-like number has: 0086 and a 13-digit IoT number.
const maxPhoneDigits = 17

// maxPhoneBytes bounds the bytes a phone-like number spans: '+', full-width digits (3 bytes each)
// and up to 3 separators between any two of them.
const maxPhoneBytes = 1 + maxPhoneDigits*3 + (maxPhoneDigits-1)*3

// MaxErrorLen bounds the message of a *FieldError, whatever the input (see FieldError.Error).
const MaxErrorLen = 1024

// ContainsPhone reports whether s contains a phone-like number (see the package's rules above).
// It is a byte scan that allocates nothing.
func ContainsPhone(s string) bool {
	return mayHoldPhone(s) && exactPhoneScan(s)
}

// exactPhoneScan is ContainsPhone without the quick test, for a caller that made it.
func exactPhoneScan(s string) bool {
	_, _, ok := nextPhone(s, 0)
	return ok
}

// Excerpt returns s as an error message or a log line may show a caller's value: every phone-like
// number replaced by PhoneMask, at most about n bytes of the rest, and quoted with Go escapes
// (strconv.Quote), so that control characters, quotes and newlines cannot forge a log line and
// invalid UTF-8 shows as \x escapes. A shortened value ends in "…" inside the quotes. The result is
// valid UTF-8 and at most 4n+8 bytes long.
func Excerpt(s string, n int) string {
	b, cut := redact(make([]byte, 0, min(len(s), n+maxPhoneBytes+4)+len(PhoneMask)+len("…")), s, n)
	if cut {
		b = append(b, "…"...)
	}
	return string(strconv.AppendQuote(make([]byte, 0, 4*len(b)+2), string(b)))
}

// MaskPhones returns s with every phone-like number replaced by PhoneMask, and nothing else
// changed: for text that is already bounded and escaped (an error message built elsewhere) on its
// way out.
func MaskPhones(s string) string {
	if !ContainsPhone(s) {
		return s
	}
	return string(appendMasked(make([]byte, 0, len(s)), s))
}

// appendMasked appends s to b with every phone-like number replaced by PhoneMask.
func appendMasked(b []byte, s string) []byte {
	i := 0
	for {
		ps, pe, ok := nextPhone(s, i)
		if !ok {
			return append(b, s[i:]...)
		}
		b = append(append(b, s[i:ps]...), PhoneMask...)
		i = pe
	}
}

// ShowName returns a name (a JSON member name, a URL path, a method) as an error message shows it:
// as it is when it is at most n bytes of printable ASCII without spaces, quotes, backslashes or a
// phone-like number — so `colour: unknown field` reads naturally — and Excerpt(s, n) otherwise.
func ShowName(s string, n int) string {
	if s == "" || len(s) > n {
		return Excerpt(s, n)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return Excerpt(s, n)
		}
	}
	if ContainsPhone(s) {
		return Excerpt(s, n)
	}
	return s
}

// redact appends to b the first n bytes (about) of s with phone-like numbers masked, and reports
// whether it left part of s out. Only a window of s is scanned, so a huge value costs no more
// than a short one; a cut never leaves a partial number behind (its digits could be most of a
// phone the scan did not see whole).
func redact(b []byte, s string, n int) ([]byte, bool) {
	window := s
	if k := n + maxPhoneBytes + 4; len(s) > k {
		// Every number that starts within the first n bytes ends inside the window, with the byte
		// after it: what is masked below is what scanning all of s would mask. The window ends at
		// a rune boundary.
		for k > n+maxPhoneBytes+1 && !utf8.RuneStart(s[k]) {
			k--
		}
		window = s[:k]
	}
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
	return trimCut(b, start, cut), true
}

// trimCut cuts b at end, backing up to a UTF-8 boundary and over any digits and separators left
// at the cut, so that the tail of a cut number is never shown.
func trimCut(b []byte, start, end int) []byte {
	for end > start && end < len(b) && !utf8.RuneStart(b[end]) {
		end--
	}
	for end > start {
		if c := b[end-1]; isDigitByte(c) || isPhoneSep(c) || c == '+' {
			end--
		} else if end-start >= 3 && isFullWidthDigit(b[end-3:end]) {
			end -= 3
		} else {
			break
		}
	}
	return b[:end]
}

// nextPhone finds the first phone-like number in s that starts at or after byte from (which must
// not be inside a run of digits) and returns its span, including a leading '+'.
func nextPhone(s string, from int) (start, end int, ok bool) {
	for i := from; i < len(s); {
		if _, w := digitAt(s, i); w == 0 {
			i++
			continue
		}
		// i starts a run of digits: a number may start here if nothing alphanumeric is glued to it.
		if i == 0 || !isAlnum(s[i-1]) && !(i >= 3 && isFullWidthDigit(s[i-3:i])) {
			if e, ok := matchPhone(s, i); ok {
				if i > 0 && s[i-1] == '+' {
					i--
				}
				return i, e, true
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

// mayHoldPhone is the quick test that rules out most ids (UUIDs, hex digests, ids holding a date)
// before the exact scan (see quickScan).
func mayHoldPhone(s string) bool {
	seen, longest := quickScan(s)
	return longest >= 11 || seen&byteWide != 0
}

// quickScan is one pass over s for what rules out a phone-like number: a phone-like number has at
// least 11 digits with only separators between them, and its first digit (0, 1 or 8: see
// phoneDigits) starts a run of digits that no letter or digit comes right before (nextPhone).
// longest is the most digits counted, in a stretch of digits and separators, from the first digit
// there that may start one: under 11, s holds no phone-like number of ASCII digits. seen is the
// union of the byteBits of s: whether it holds a control character, or a byte that may start a
// full-width digit (which the count does not see).
//
// The pass has no branches, and from byte to byte depends on little more than two running values
// (a few cycles per byte): checkText runs it on every free-text field of every event.
func quickScan(s string) (seen uint8, longest int) {
	started, run, prev := 0, 0, uint8(0)
	for i := 0; i < len(s); i++ {
		c := byteBits[s[i]]
		seen |= c
		keep := -int(c >> byteKeepShift & 1) // a digit or a separator: the stretch goes on
		start := int(c>>byteStartShift&1) &^ int(prev>>byteAlnumShift&1)
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
	byteKeep                // a digit or a separator (isPhoneSep, '+'): a stretch of digits goes on
	byteStart               // 0, 1 or 8: may be the first digit of a phone-like number
	byteAlnum               // an ASCII letter or digit
	byteControl             // below 0x20, or 0x7f
	byteWide                // 0xEF, which may start a full-width digit

	byteKeepShift  = 1
	byteStartShift = 2
	byteAlnumShift = 3
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
		case isPhoneSep(b) || b == '+':
			t[c] = byteKeep
		case b < 0x20 || b == 0x7f:
			t[c] = byteControl
		case b == 0xEF:
			t[c] = byteWide
		}
	}
	return t
}()

// matchPhone reads groups of digits joined by short runs of separators from i (the start of a
// run of digits) and returns the end of the longest reading that is a phone number and is not
// followed by a letter.
func matchPhone(s string, i int) (int, bool) {
	var digits [maxPhoneDigits]byte
	n, firstGroup, best := 0, 0, -1
	plus := i > 0 && s[i-1] == '+'
	for j := i; ; {
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
		if firstGroup == 0 {
			firstGroup = n
		}
		if (j == len(s) || !isAlnum(s[j])) && phoneDigits(digits[:n], plus, firstGroup) {
			best = j
		}
		k := j
		for k < len(s) && k-j < 3 && isPhoneSep(s[k]) {
			k++
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
// number with an optional country prefix. A bare 86 prefix counts before an 11-digit number, or
// when written apart (86 138…) or after '+': a 15-digit run starting with 86 is an IMEI.
func phoneDigits(d []byte, plus bool, firstGroup int) bool {
	switch {
	case len(d) >= 4 && d[0] == '0' && d[1] == '0' && d[2] == '8' && d[3] == '6':
		d = d[4:]
	case len(d) >= 2 && d[0] == '8' && d[1] == '6' && (plus || firstGroup == 2 || len(d) == 13):
		d = d[2:]
	}
	return len(d) == 11 && d[0] == '1' || len(d) == 13 && d[0] == '1' && d[1] == '4'
}

// digitAt returns the digit at s[i] as an ASCII byte and its width: 1 for 0-9, 3 for a full-width
// digit (U+FF10..U+FF19, what Chinese input methods type in full-width mode), 0 for anything else.
func digitAt(s string, i int) (byte, int) {
	c := s[i]
	if c >= '0' && c <= '9' {
		return c, 1
	}
	if c == 0xEF && i+2 < len(s) && s[i+1] == 0xBC && s[i+2] >= 0x90 && s[i+2] <= 0x99 {
		return '0' + s[i+2] - 0x90, 3
	}
	return 0, 0
}

// isFullWidthDigit reports whether b is exactly one full-width digit.
func isFullWidthDigit[T string | []byte](b T) bool {
	return len(b) == 3 && b[0] == 0xEF && b[1] == 0xBC && b[2] >= 0x90 && b[2] <= 0x99
}

func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isPhoneSep reports whether c may separate the digit groups of a written phone number.
func isPhoneSep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'
}
