package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writes all land, whole (run under -race).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); len(got) != 8*100*3 || strings.Count(got, "ab\n") != 800 {
		t.Fatalf("%d bytes, %d lines", len(got), strings.Count(got, "ab\n"))
	}
}
