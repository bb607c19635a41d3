package geo

import "sync"

const (
	cacheShardBits = 4
	cacheShards    = 1 << cacheShardBits
)

// offsetCache maps a record's offset in a MaxMind database to its decoded
// value. MaxMind databases store each distinct record once, so the offset is a
// perfect key. It is sharded to keep readers on different cores off one lock,
// and bounded: a full shard is emptied and refills from the hot records.
type offsetCache[V any] struct {
	perShard int // 0: caching off
	shards   [cacheShards]cacheShard[V]
}

type cacheShard[V any] struct {
	mu sync.RWMutex
	m  map[uintptr]V
	_  [32]byte // keep shards on separate cache lines
}

func (c *offsetCache[V]) init(size int) {
	if size <= 0 {
		return
	}
	c.perShard = max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[uintptr]V)
	}
}

func (c *offsetCache[V]) shard(off uintptr) *cacheShard[V] {
	return &c.shards[(uint64(off)*0x9E3779B97F4A7C15)>>(64-cacheShardBits)]
}

func (c *offsetCache[V]) get(off uintptr) (V, bool) {
	if c.perShard == 0 {
		var zero V
		return zero, false
	}
	s := c.shard(off)
	s.mu.RLock()
	v, ok := s.m[off]
	s.mu.RUnlock()
	return v, ok
}

func (c *offsetCache[V]) put(off uintptr, v V) {
	if c.perShard == 0 {
		return
	}
	s := c.shard(off)
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		clear(s.m)
	}
	s.m[off] = v
	s.mu.Unlock()
}
