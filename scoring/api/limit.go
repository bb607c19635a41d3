package api

import (
	"sync"
	"time"
)

// bucket is a token bucket: RatePerApp tokens per second, at most Burst saved.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (s *Server) allow(key string) bool {
	if s.cfg.RatePerApp <= 0 {
		return true
	}
	v, ok := s.limits.Load(key)
	if !ok {
		v, _ = s.limits.LoadOrStore(key, &bucket{tokens: float64(s.cfg.Burst), last: time.Now()})
	}
	b := v.(*bucket)
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(float64(s.cfg.Burst), b.tokens+now.Sub(b.last).Seconds()*s.cfg.RatePerApp)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
