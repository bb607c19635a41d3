package scoring

import (
	"github.com/cespare/xxhash/v2"

	"github.com/riskflow/riskflow/schemas"
)

// deviceKeying is the version of deviceKeyOf; change it with deviceKeyOf, so that snapshots keyed
// the old way are refused and replay takes over (TestDeviceKeyingIsPinned). 1: the canonical form
// (0: the id as sent, byte for byte).
const deviceKeying = 1

// deviceKeyOf is the key of a device id in the feature state and the lists: the xxhash of its
// canonical form (schemas.CanonicalDeviceID), 0 for none: keyed as sent, a rig that varied its id's
// spelling was six devices of one number each (no phones_per_device), the same phone reported by
// two verify services in two cases had its windows split, and a block-listed id passed in another
// case. An id that is canonical already (lower-case ASCII without spaces, the usual Android id or
// OAID) keeps its key, and costs no allocation; so does any ASCII id.
func deviceKeyOf(id string) uint64 {
	if id == "" {
		return 0
	}
	var buf [schemas.MaxDeviceIDLen]byte
	return nz(xxhash.Sum64(schemas.AppendCanonicalDeviceID(buf[:0], id)))
}
