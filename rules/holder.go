package rules

import (
	"sync/atomic"
)

// Holder holds the pack in force, for hot reload: scorers Load it once per event, a reloader Swaps
// in a new one. Both are a single atomic operation; a scorer that loaded the old pack finishes its
// event with it.
type Holder struct {
	p atomic.Pointer[Pack]
}

// NewHolder returns a Holder holding p (which may be nil until the first load).
func NewHolder(p *Pack) *Holder {
	h := &Holder{}
	h.p.Store(p)
	return h
}

// Load returns the current pack.
func (h *Holder) Load() *Pack { return h.p.Load() }

// Swap installs p and returns the pack it replaces.
func (h *Holder) Swap(p *Pack) (old *Pack) { return h.p.Swap(p) }
