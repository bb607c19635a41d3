package consumers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// riskflow's own look at a topic that does not exist (deleted while nodes run) does not create it
// on a broker that creates topics a metadata request asks to (auto.create.topics.enable, Kafka's
// default): the consumer-group lag, read every few seconds, created a deleted risk.scores anew
// with the broker's defaults before the scorers' writers could create it with riskflow's settings.
func TestLookingAtAMissingTopicDoesNotCreateIt(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	for what, look := range map[string]func(topic string) error{
		"Partitions": func(topic string) error { _, err := Partitions(ctx, c, topic); return err },
		"GroupLag":   func(topic string) error { _, err := GroupLag(ctx, c, "g", topic); return err },
		"EndOffsets": func(topic string) error { _, err := EndOffsets(ctx, c, topic); return err },
	} {
		topic := "missing-" + what
		if err := look(topic); !errors.Is(err, kafka.UnknownTopicOrPartition) {
			t.Errorf("%s of a missing topic: %v, want %v", what, err, kafka.UnknownTopicOrPartition)
		}
		md, err := (&kafka.Client{Addr: kafka.TCP(c.Brokers...)}).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Topics) != 1 || md.Topics[0].Error == nil {
			t.Errorf("%s of a missing topic created it: %+v", what, md.Topics)
		}
	}
}
