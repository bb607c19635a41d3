package chsink

import (
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// After an INSERT timed out the bound halves it (never below minInsertRows, never above the bound
// in force) and holds for insertBoundFor after the last timeout, whatever is written meanwhile:
// growing back on each batch written whole sent the size that had just timed out again every
// other batch.
func TestInsertBound(t *testing.T) {
	var b insertBound
	t0 := time.Unix(1_800_000_000, 0)
	if got := b.limit(t0); got != 0 {
		t.Fatalf("new bound: %d, want none", got)
	}
	if got := b.timedOut(100_000, t0); got != 50_000 {
		t.Fatalf("after 100,000 timed out: %d, want 50,000", got)
	}
	if got := b.timedOut(100_000, t0); got != 50_000 {
		t.Errorf("a concurrent timeout of the larger size raised the bound to %d", got)
	}
	if got := b.timedOut(50_000, t0.Add(time.Minute)); got != 25_000 {
		t.Errorf("after 50,000 timed out: %d, want 25,000", got)
	}
	if got := b.timedOut(6_000, t0.Add(2*time.Minute)); got != minInsertRows {
		t.Errorf("after 6,000 timed out: %d, want the floor %d", got, minInsertRows)
	}
	if got := b.limit(t0.Add(2*time.Minute + insertBoundFor - time.Second)); got != minInsertRows {
		t.Errorf("just before it expires: %d, want %d", got, minInsertRows)
	}
	if got := b.limit(t0.Add(2*time.Minute + insertBoundFor)); got != 0 {
		t.Errorf("%s after the last timeout: %d, want none", insertBoundFor, got)
	}
}

func TestChunks(t *testing.T) {
	recs := make([]*schemas.ScoreRecord, 7)
	for i := range recs {
		recs[i] = &schemas.ScoreRecord{EventID: string(rune('a' + i))}
	}
	for _, c := range []struct {
		limit int64
		want  []int
	}{{0, []int{7}}, {7, []int{7}}, {10, []int{7}}, {3, []int{3, 3, 1}}, {1, []int{1, 1, 1, 1, 1, 1, 1}}} {
		var got []int
		seen := 0
		for _, ch := range chunks(recs, c.limit) {
			got = append(got, len(ch))
			for _, r := range ch {
				if r != recs[seen] {
					t.Fatalf("limit %d: record %d out of order", c.limit, seen)
				}
				seen++
			}
		}
		if len(got) != len(c.want) || seen != len(recs) {
			t.Fatalf("limit %d: chunks %v, want %v", c.limit, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("limit %d: chunks %v, want %v", c.limit, got, c.want)
			}
		}
	}
}
