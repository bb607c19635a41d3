package features

import (
	"sync"
	"sync/atomic"
	"testing"
)

// A shard lock excludes writers from each other and from readers, and lets writers in while
// readers keep coming (a waiting writer stops new readers: else the writers would not finish).
func TestShardLockExcludes(t *testing.T) {
	var (
		l               shardLock
		a, b            int // written together under the write lock
		writers, reads  atomic.Int32
		wg              sync.WaitGroup
		stopReaders     atomic.Bool
		writesDone, bad atomic.Int32
	)
	for range 4 {
		wg.Add(1)
		go func() { // readers, until the writers are done
			defer wg.Done()
			for !stopReaders.Load() {
				l.RLock()
				reads.Add(1)
				if writers.Load() != 0 || a != b {
					bad.Add(1)
				}
				reads.Add(-1)
				l.RUnlock()
			}
		}()
	}
	var ww sync.WaitGroup
	for range 2 {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for range 2000 {
				l.Lock()
				if writers.Add(1) != 1 || reads.Load() != 0 {
					bad.Add(1)
				}
				a++
				b++
				writers.Add(-1)
				l.Unlock()
				writesDone.Add(1)
			}
		}()
	}
	ww.Wait()
	stopReaders.Store(true)
	wg.Wait()
	if bad.Load() != 0 || a != 4000 || b != 4000 || writesDone.Load() != 4000 {
		t.Fatalf("%d exclusion failures; a %d b %d after %d writes (want 4000)", bad.Load(), a, b, writesDone.Load())
	}
	if l.w.Load() != 0 {
		t.Fatalf("lock word %#x after every lock was released, want 0", l.w.Load())
	}
}

// Releasing a lock that is not held is a bug, reported at once.
func TestShardLockUnheld(t *testing.T) {
	for name, f := range map[string]func(*shardLock){
		"Unlock": (*shardLock).Unlock, "RUnlock": (*shardLock).RUnlock,
		"Unlock under a read lock":   func(l *shardLock) { l.RLock(); l.Unlock() },
		"RUnlock under a write lock": func(l *shardLock) { l.Lock(); l.RUnlock() },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(new(shardLock))
		}()
	}
}
