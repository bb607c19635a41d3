package rules

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync/atomic"
	"time"
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

// Watch polls path every interval (1s if every <= 0) until ctx is done, and recompiles the file
// when its content changes. It reads and hashes the file on each poll — packs are a few kilobytes —
// so a rewrite within the file system's timestamp granularity, or a Kubernetes ConfigMap symlink
// swap, is not missed. It calls onLoad with each pack that compiled (typically to Swap it into a
// Holder) and onErr with each failure; a rejected file leaves the running pack alone and is not
// compiled again until its content changes. A file that cannot be read is reported once until it
// can be read again. Watch loads the file as it is when called, then polls. Either callback may be
// nil. Watch returns when ctx is done; run it in its own goroutine.
func Watch(ctx context.Context, path string, env *Env, every time.Duration, onLoad func(*Pack), onErr func(error)) {
	if every <= 0 {
		every = time.Second
	}
	var (
		lastSum  [sha256.Size]byte
		haveSum  bool
		readFail bool // a read failure was reported and the file has not been read since
	)
	check := func() {
		data, err := os.ReadFile(path)
		if err != nil {
			if !readFail && onErr != nil {
				onErr(fmt.Errorf("rules: watch: %w", err))
			}
			readFail = true
			return
		}
		readFail = false
		sum := sha256.Sum256(data)
		if haveSum && sum == lastSum {
			return
		}
		lastSum, haveSum = sum, true
		p, err := compile(data, env, path)
		if err != nil {
			if onErr != nil {
				onErr(err)
			}
			return
		}
		if onLoad != nil {
			onLoad(p)
		}
	}

	check()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}
