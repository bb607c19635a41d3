package schemas

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// CanonicalDeviceID is the form under which a device id counts as one device: the feature
// state's key (scoring) and `riskflow lookup --device` both read an id through it. A device id is
// an opaque fingerprint, but one written in upper or lower case, with spaces around or inside
// it, with invisible characters (a zero-width space, a BOM) or in full-width or other
// compatibility forms (ｒｉｇ-01) is one device. The canonical form is NFKC, lower case, without
// white space and invisible characters; an ASCII id is lower-cased with its spaces and control
// characters dropped (no NFKC needed). An id that is nothing but such characters is its own form
// (refused by the checks anyway; kept apart).
func CanonicalDeviceID(id string) string {
	return string(AppendCanonicalDeviceID(nil, id))
}

// AppendCanonicalDeviceID appends CanonicalDeviceID(id) to dst: into a buffer of MaxDeviceIDLen
// bytes, an ASCII id's costs no allocation (the feature state keys every event's device so).
func AppendCanonicalDeviceID(dst []byte, id string) []byte {
	n := len(dst)
	for i := 0; i < len(id); i++ { // one pass: an ASCII id is read once
		c := id[i]
		switch {
		case c >= 0x80:
			return append(dst[:n], canonicalText(id)...)
		case c <= ' ' || c == 0x7f:
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	if len(dst) == n {
		return append(dst, id...)
	}
	return dst
}

// canonicalText is CanonicalDeviceID of an id holding non-ASCII text.
func canonicalText(id string) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(id) {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Variation_Selector) ||
			r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0' || r == '\u2800' { // Hangul fillers, braille blank
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	if b.Len() == 0 {
		return id
	}
	return b.String()
}
