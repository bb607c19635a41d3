package scoring

import (
	"strings"
	"unicode"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/text/unicode/norm"

	"github.com/riskflow/riskflow/schemas"
)

// deviceKeying is the version of deviceKeyOf; change it with deviceKeyOf, so that snapshots keyed
// the old way are refused and replay takes over (TestDeviceKeyingIsPinned). 1: the canonical form
// (0: the id as sent, byte for byte).
const deviceKeying = 1

// deviceKeyOf is the key of a device id in the feature state and the lists: the xxhash of its
// canonical form, 0 for none. A device id is an opaque fingerprint, but one written in upper or
// lower case, with spaces around or inside it, with invisible characters (a zero-width space, a
// BOM) or in full-width or other compatibility forms (ｒｉｇ-01) is one device: keyed as sent, a rig
// that varied its id's spelling was six devices of one number each (no phones_per_device), the
// same phone reported by two verify services in two cases had its windows split, and a
// block-listed id passed in another case. The canonical form is NFKC, lower case, without white
// space and invisible characters. An id that is canonical already (lower-case ASCII without
// spaces, the usual Android id or OAID) keeps its key, and costs no allocation; so does any ASCII
// id.
func deviceKeyOf(id string) uint64 {
	if id == "" {
		return 0
	}
	var buf [schemas.MaxDeviceIDLen]byte
	b := buf[:0]
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 0x80:
			return nz(xxhash.Sum64String(canonicalDeviceID(id)))
		case c <= ' ' || c == 0x7f:
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	if len(b) == 0 {
		return nz(xxhash.Sum64String(id)) // only spaces: refused by schemas; kept apart here
	}
	return nz(xxhash.Sum64(b))
}

// canonicalDeviceID is the canonical form of a device id holding non-ASCII text (deviceKeyOf).
func canonicalDeviceID(id string) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(id) {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Variation_Selector) ||
			r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0' || r == '\u2800' { // Hangul fillers, braille blank
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	if b.Len() == 0 {
		return id // blank: refused by schemas; kept apart here
	}
	return b.String()
}
