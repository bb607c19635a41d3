package features

import "sync"

// ApplyBatch records attempts as Apply does one by one, in order, and reports how many were
// recorded; applied, when not nil (at least len(ks) long), is set to whether each was (false: a
// duplicate event id, within the retention or earlier in the batch).
//
// It does the same work with fewer shard locks and overlapping cache misses: the attempts' event
// ids, then their key inserts, are grouped by shard, and each shard is locked once for up to
// batchHold of them, whose home slots are all read before the first insert (see applyShard); a
// reader waits for at most batchHold inserts. The batch is applied in runs that end where the
// event time calls for an idle-key sweep, which runs after its run as it would after its attempt:
// the state (and a snapshot of it) is the one applying ks one by one gives. A reader may see a
// later attempt of a run on one key before an earlier one on another key.
func (s *State) ApplyBatch(ks []Keys, applied []bool) int {
	if len(ks) == 0 {
		return 0
	}
	if applied != nil {
		applied = applied[:len(ks)]
	}
	b := batchPool.Get().(*batch)
	defer batchPool.Put(b)
	s.applyMu.RLock()
	defer s.applyMu.RUnlock()
	n := 0
	for len(ks) > 0 {
		// The run ends at the first attempt that calls for a sweep if it is recorded: the
		// watermark is below sweepAt, so that is the first reaching it.
		next, end := s.sweepAt.Load(), len(ks)
		for i := range ks {
			if ks[i].T >= next {
				end = i + 1
				break
			}
		}
		m, w := s.applyRun(b, ks[:end])
		n += m
		if applied != nil {
			copy(applied, b.ok)
			applied = applied[end:]
		}
		// As in Apply: the sweep is paced by event time.
		if b.ok[end-1] && w >= next && s.sweepAt.CompareAndSwap(next, w+s.sweepStep) {
			s.sweep()
		}
		ks = ks[end:]
	}
	return n
}

// applyRun applies ks, a run of ApplyBatch, and returns how many were recorded (b.ok: which) and
// the watermark after them.
func (s *State) applyRun(b *batch, ks []Keys) (int, uint32) {
	// Event ids, grouped by shard; ids repeated within the batch lose to their first occurrence
	// as they would one by one, since a shard's ids are upserted in batch order.
	ok := b.ok[:0]
	for i := range ks {
		ok = append(ok, ks[i].EventID == 0)
	}
	b.ok = ok
	b.reset()
	for i := range ks {
		if id := ks[i].EventID; id != 0 {
			b.push(batchOp{key: id, ev: uint32(i)}, shardOf(id))
		}
	}
	for si, ops := range b.sorted() {
		if len(ops) == 0 {
			continue
		}
		sh := &s.shards[si]
		sh.mu.Lock()
		for _, op := range ops {
			i, added := sh.seen.upsert(op.key)
			if added {
				sh.seen.val(i)[0] = ks[op.ev].T
				ok[op.ev] = true
			}
		}
		sh.mu.Unlock()
	}

	// Key inserts of the recorded attempts, grouped by shard in batch order.
	b.reset()
	n, w := 0, uint32(0)
	for i := range ks {
		if !ok[i] {
			continue
		}
		n++
		k := &ks[i]
		ev := uint32(i)
		for kind, en := range k.entries() {
			if en.key != 0 {
				b.push(batchOp{key: en.key, e: en.e, a: en.a, b: en.b, ev: ev, kind: uint8(kind)}, shardOf(en.key))
			}
		}
		if k.Token != 0 {
			b.push(batchOp{key: k.Token, kind: kindToken, ev: ev}, shardOf(k.Token))
		}
		w = max(w, k.T)
	}
	for si, ops := range b.sorted() {
		for len(ops) > 0 {
			m := min(len(ops), batchHold)
			b.sink += s.applyShard(&s.shards[si], ops[:m], ks)
			ops = ops[m:]
		}
	}
	cur := s.watermark.Load()
	for w > cur && !s.watermark.CompareAndSwap(cur, w) {
		cur = s.watermark.Load()
	}
	s.applied.Add(uint64(n))
	return n, max(w, cur)
}

// batchHold is the most inserts ApplyBatch makes under one shard lock: few enough that a reader
// waiting for the lock waits about as long as for one attempt applied by Apply.
const batchHold = 16

// applyShard makes ops (inserts into shard sh, in batch order) under its lock. It first reads the
// home slot of every op's key: loads that do not depend on one another, so the processor waits for
// their cache misses together rather than one insert after the other.
func (s *State) applyShard(sh *shard, ops []batchOp, ks []Keys) (sink uint32) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for j := range ops {
		op := &ops[j]
		t := &sh.tokens.table
		if op.kind != kindToken {
			t = &sh.recs[op.kind].table
		}
		op.h = t.hash(op.key)
		sink += t.touch(op.h)
	}
	for j := range ops {
		op := &ops[j]
		k := &ks[op.ev]
		if op.kind == kindToken {
			i, _ := sh.tokens.upsertHash(op.key, op.h)
			sh.tokens.add(i, op.key, k.T)
			continue
		}
		var loc *Keys
		if op.kind == uint8(KindPhone) && k.HasLoc && k.T != 0 {
			loc = k
		}
		rt := &sh.recs[op.kind]
		rt.add(s, rt.prepare(op.key, op.h), op.key, op.e, op.a, op.b, loc)
	}
	return sink
}

// kindToken marks a batch op on the token table.
const kindToken = uint8(NumKinds)

// batchOp is one insert of ApplyBatch: an event id (dedupe), a key's entry (kind < NumKinds:
// second with the failure bit e, members a and b) or a token sighting, of attempt ks[ev].
type batchOp struct {
	key     uint64
	e, a, b uint32
	ev      uint32
	h       uint32 // the key's hash in its table (applyShard)
	kind    uint8
}

// batch is ApplyBatch's scratch space: ops grouped by shard with a counting sort.
type batch struct {
	ops   []batchOp
	shard []uint8
	out   []batchOp
	count [numShards + 1]int
	ok    []bool
	sink  uint32 // what applyShard's warming reads read, kept so that they are not optimized away
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

func (b *batch) reset() {
	b.ops, b.shard = b.ops[:0], b.shard[:0]
	b.count = [numShards + 1]int{}
}

func (b *batch) push(op batchOp, si int) {
	b.ops = append(b.ops, op)
	b.shard = append(b.shard, uint8(si))
	b.count[si+1]++
}

// sorted returns, for each shard, its ops in the order they were pushed.
func (b *batch) sorted() func(yield func(int, []batchOp) bool) {
	for si := range numShards {
		b.count[si+1] += b.count[si]
	}
	if cap(b.out) < len(b.ops) {
		b.out = make([]batchOp, len(b.ops))
	}
	out := b.out[:len(b.ops)]
	var pos [numShards]int
	copy(pos[:], b.count[:numShards])
	for j, si := range b.shard {
		out[pos[si]] = b.ops[j]
		pos[si]++
	}
	return func(yield func(int, []batchOp) bool) {
		for si := range numShards {
			if !yield(si, out[b.count[si]:b.count[si+1]]) {
				return
			}
		}
	}
}
