package consumers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A wait whose first reading of the end offsets fails (a broker coming back, a partition between
// leaders) reads them again within its limit instead of giving up at once: giving up scores the
// batch without the other partitions' attempts.
func TestWaitThroughRetriesEndOffsets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{Brokers: c.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := NewWriter(cfg, "t")
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// A tail that has applied partition 0 up to its end (offset 1), its last message stamped long
	// before the time waited for: only the end offsets can tell it is through.
	tl := NewBatchTail(cfg, "t", time.Time{}, func([]kafka.Message) {}, quiet())
	tl.targets = map[int]int64{0: 1}
	tl.pm.Store((*partMaps)(nil).with(0, 1))

	var fails atomic.Int32 // the next ListOffsets requests to answer with an error
	c.ControlKey(int16(kmsg.ListOffsets), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if fails.Add(-1) < 0 {
			fails.Store(0)
			return nil, nil, false
		}
		req := r.(*kmsg.ListOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = 6 // NOT_LEADER_FOR_PARTITION
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	fails.Store(2)
	live := Point{Stamp: time.Now().Add(-time.Minute)}
	if _, ok := tl.WaitThrough(ctx, live, 10*time.Second); !ok {
		t.Error("a live batch's wait gave up after the end offsets could not be read once")
	}
	// A replayed batch whose stamp the partition is past waits by event time: the partition has
	// applied no event at or after it, so only its end offset (read after the skew of quiet) can
	// tell it is idle.
	tl.parts()[0].last.Store(time.Now().UnixNano())
	fails.Store(2)
	replay := Point{Stamp: time.Now().Add(-time.Minute), Event: time.Now().Add(-time.Hour)}
	if _, ok := tl.WaitThrough(ctx, replay, 10*time.Second); !ok {
		t.Error("a replayed batch's wait gave up after the end offsets could not be read once")
	}
}
