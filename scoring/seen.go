package scoring

import "github.com/cespare/xxhash/v2"

// Seen reports whether the event id is in the feature state (applied within the retention): how a
// replica's freshness is observed.
func (s *Scorer) Seen(eventID string) bool {
	return s.state.Seen(nz(xxhash.Sum64String(eventID)))
}
