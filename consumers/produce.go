package consumers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"
)

// MessageWriter is the part of *kafka.Writer that Produce needs.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// ErrTooLarge marks a message larger than the broker accepts in one produce request.
var ErrTooLarge = errors.New("message is larger than the broker accepts")

// Rejection is a message that can never be written as it is: retrying it would fail the same way.
type Rejection struct {
	Index int   // position in the slice given to Produce
	Err   error // why (errors.Is(Err, ErrTooLarge) for size)
}

// Produce writes msgs through w and sorts out whatever failed, so that no message can hold up the
// others for ever:
//   - a message larger than maxBytes (its size as kafka-go counts it) is not sent and is rejected
//     with ErrTooLarge;
//   - messages the broker refused for good (IsRejection: too large, invalid record) are sent again
//     in halves, in case the batch around them was the problem (the broker's limit is lower than
//     the writer was told: a topic's max.message.bytes lowered since), and a message refused on its
//     own is rejected — a batch of 2,000 refused as a whole costs a few dozen writes, not 2,000;
//   - messages that failed for a reason that may pass (broker away, leader moving, a timeout) are
//     returned in retry, with the first such error; the caller writes those again later.
//
// Every message in neither list is durable (acknowledged). maxBytes ≤ 0 means no size check here.
func Produce(ctx context.Context, w MessageWriter, msgs []kafka.Message, maxBytes int) (rejected []Rejection, retry []int, err error) {
	send := make([]int, 0, len(msgs))
	for i := range msgs {
		if maxBytes > 0 && MessageSize(&msgs[i]) > maxBytes {
			rejected = append(rejected, Rejection{Index: i, Err: fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, MessageSize(&msgs[i]), maxBytes)})
			continue
		}
		send = append(send, i)
	}
	if len(send) == 0 {
		return rejected, nil, nil
	}
	batch := msgs
	if len(send) != len(msgs) {
		batch = make([]kafka.Message, len(send))
		for j, i := range send {
			batch[j] = msgs[i]
		}
	}
	refused, retry, err := write(ctx, w, msgs, send, batch)
	// A refused message may pass in a smaller batch: the batch it was in may have been what the
	// broker refused. Halves, then halves of what they refuse, down to single messages.
	halves := func(rs []Rejection) [][]Rejection { return [][]Rejection{rs[:len(rs)/2], rs[len(rs)/2:]} }
	pending := halves(refused)
	for len(pending) > 0 {
		group := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		if len(group) == 0 {
			continue
		}
		idx := make([]int, len(group))
		for j, r := range group {
			idx[j] = r.Index
		}
		r, again, e := write(ctx, w, msgs, idx, nil)
		switch {
		case len(group) == 1:
			rejected = append(rejected, r...) // refused on its own: for good
		case len(r) > 0:
			pending = append(pending, halves(r)...)
		}
		retry = append(retry, again...)
		if err == nil {
			err = e
		}
	}
	sort.Ints(retry)
	if err != nil {
		err = fmt.Errorf("%d of %d messages not written: %w", len(retry), len(msgs), Summarize(err))
	}
	sort.Slice(rejected, func(a, b int) bool { return rejected[a].Index < rejected[b].Index })
	return rejected, retry, err
}

// write writes the messages of msgs at idx (batch: those messages, or nil to gather them) and
// sorts out the failures: refused are the ones the broker refused for good (their Index, with the
// error), retry the ones that may pass later, err the first error of those.
func write(ctx context.Context, w MessageWriter, msgs []kafka.Message, idx []int, batch []kafka.Message) (refused []Rejection, retry []int, err error) {
	if batch == nil {
		batch = make([]kafka.Message, len(idx))
		for j, i := range idx {
			batch[j] = msgs[i]
		}
	}
	werr := w.WriteMessages(ctx, batch...)
	if werr == nil {
		return nil, nil, nil
	}
	var we kafka.WriteErrors
	whole := !errors.As(werr, &we) || len(we) != len(batch) // the whole call failed (no partitions, cancelled, …)
	for j, i := range idx {
		e := werr
		if !whole {
			e = we[j]
		}
		switch {
		case e == nil:
		case IsRejection(e) && ctx.Err() == nil:
			refused = append(refused, Rejection{Index: i, Err: e})
		default:
			retry = append(retry, i)
			if err == nil {
				err = e
			}
		}
	}
	return refused, retry, err
}

// IsRejection reports whether a produce error is about the message itself, so that sending it
// again unchanged would fail the same way: the broker's size limits and record validation.
func IsRejection(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) { // a rejection when every message that failed was rejected
		any := false
		for _, e := range we {
			if e != nil {
				if !IsRejection(e) {
					return false
				}
				any = true
			}
		}
		return any
	}
	var tl kafka.MessageTooLargeError
	if errors.As(err, &tl) || errors.Is(err, ErrTooLarge) {
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidRecord,
			kafka.InvalidMessage, kafka.InvalidMessageSize, kafka.InvalidTimestamp:
			return true
		}
	}
	return false
}

// MessageSize is the size of m as kafka-go counts it against a writer's BatchBytes.
func MessageSize(m *kafka.Message) int {
	n := 4 + 1 + 1 + 8 + 4 + len(m.Key) + 4 + len(m.Value) // crc, magic, attributes, timestamp, key, value
	n += 5                                                 // header count (varint)
	for _, h := range m.Headers {
		n += 5 + len(h.Key) + 5 + len(h.Value)
	}
	return n
}

// Summarize shortens an error for a log line or a wrapped error: kafka-go's WriteErrors prints
// one entry per message (a batch of 2,000 made a 430 KB line), so equal errors are counted
// instead, and the text is cut at MaxErrorText bytes.
func Summarize(err error) error {
	if err == nil {
		return nil
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		counts := map[string]int{}
		var order []string
		failed := 0
		for _, e := range we {
			if e == nil {
				continue
			}
			failed++
			s := e.Error()
			if counts[s] == 0 {
				order = append(order, s)
			}
			counts[s]++
		}
		parts := make([]string, 0, len(order))
		for _, s := range order {
			parts = append(parts, s+" (×"+strconv.Itoa(counts[s])+")")
		}
		return &summary{err: err, text: fmt.Sprintf("%d of %d messages failed: %s", failed, len(we), strings.Join(parts, "; "))}
	}
	if len(err.Error()) > MaxErrorText {
		return &summary{err: err, text: err.Error()}
	}
	return err
}

// MaxErrorText bounds the text of an error that reaches a log line.
const MaxErrorText = 512

// summary is an error with a shorter text that still unwraps to the original (errors.Is/As work).
type summary struct {
	err  error
	text string
}

func (s *summary) Error() string { return cut(s.text, MaxErrorText) }
func (s *summary) Unwrap() error { return s.err }

// cut shortens s to at most n bytes, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
