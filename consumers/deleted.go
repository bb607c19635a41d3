package consumers

import (
	"context"
	"fmt"
)

// deletedUnread returns how many of offsets [from, to) of partition p — offsets a reader jumped
// over — the topic no longer holds: those below its oldest offset, deleted by retention (or a
// DeleteRecords) before they were read. kafka-go's partition reader moves on to the oldest offset
// without a word when its position is older, so a scorer down longer than verify.events' retention
// came back with 999 of 2,000 events never scored and nothing in its log or metrics (held-out run).
// A jump within what the topic holds (transaction markers, a compacted topic) is no loss: 0.
func deletedUnread(ctx context.Context, c Config, topic string, p int, from, to int64) (int64, error) {
	c = c.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	conn, err := c.dialer().DialLeader(ctx, "tcp", c.Brokers[0], topic, p)
	if err != nil {
		return 0, fmt.Errorf("read the oldest offset of %s/%d: dial leader: %w", topic, p, err)
	}
	defer conn.Close()
	defer bound(ctx, conn)()
	first, err := conn.ReadFirstOffset()
	if err != nil {
		return 0, fmt.Errorf("read the oldest offset of %s/%d: %w", topic, p, err)
	}
	if first <= from {
		return 0, nil
	}
	return min(first, to) - from, nil
}
