package features

import (
	"runtime"
	"sync/atomic"
)

// shardLock is a shard's readers-writer lock: one atomic word, so that taking and releasing it
// costs one atomic instruction each (a sync.RWMutex costs two each way for a writer: its writer
// mutex and its reader count). The writer applying attempts takes about ten shard locks per
// attempt, each on a line that is cold, so those instructions were a fifth of Apply.
//
// The word holds the number of readers (low bits), a writer waiting (wantBit) and a writer
// holding it (heldBit). A writer first claims wantBit, which stops new readers, then waits for
// the readers in to leave: readers cannot starve it. Waiters spin briefly, then yield: holds
// are short (one key's insert, one attempt's reads), never across a blocking call.
type shardLock struct {
	w atomic.Int32
}

const (
	heldBit = 1 << 30
	wantBit = 1 << 29
	readers = wantBit - 1
)

// Lock takes the lock for writing.
func (l *shardLock) Lock() {
	if l.w.CompareAndSwap(0, heldBit) {
		return
	}
	l.lockSlow()
}

func (l *shardLock) lockSlow() {
	// Claim the writer's turn (one waiting writer at a time), then wait for the readers to leave.
	for spin := 0; ; spin++ {
		v := l.w.Load()
		if v&(heldBit|wantBit) == 0 && l.w.CompareAndSwap(v, v|wantBit) {
			break
		}
		pause(spin)
	}
	for spin := 0; ; spin++ {
		if l.w.CompareAndSwap(wantBit, heldBit) {
			return
		}
		pause(spin)
	}
}

// Unlock releases the write lock.
func (l *shardLock) Unlock() {
	if l.w.Add(-heldBit)&heldBit != 0 {
		panic("features: unlock of an unlocked shard lock")
	}
}

// RLock takes the lock for reading.
func (l *shardLock) RLock() {
	if v := l.w.Add(1); v&(heldBit|wantBit) == 0 {
		return
	}
	l.rlockSlow()
}

func (l *shardLock) rlockSlow() {
	// A writer holds or wants the lock: step out of its way, and come back when it is done.
	l.w.Add(-1)
	for spin := 0; ; spin++ {
		v := l.w.Load()
		if v&(heldBit|wantBit) == 0 && l.w.CompareAndSwap(v, v+1) {
			return
		}
		pause(spin)
	}
}

// RUnlock releases a read lock.
func (l *shardLock) RUnlock() {
	if l.w.Add(-1)&readers == readers {
		panic("features: runlock of an unlocked shard lock")
	}
}

// pause waits a little before the spin-th retry: a few busy retries, then the processor is
// given to other goroutines (the holder among them, on a machine with few cores).
func pause(spin int) {
	if spin < 16 {
		return
	}
	runtime.Gosched()
}
