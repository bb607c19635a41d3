package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Config is the Kafka connection shared by every reader and writer.
//
// The YAML keys are those of riskflow's kafka section; the fields without one are not
// configurable there. DefaultConfig has the defaults, Validate names every key that is wrong.
type Config struct {
	Brokers      []string      `yaml:"brokers"`
	ClientID     string        `yaml:"-"`
	BatchSize    int           `yaml:"-"`             // writer: messages per produce request; default 1000
	BatchTimeout time.Duration `yaml:"batch_timeout"` // writer: longest a partial batch waits; default 2 ms (kafka-go's 1 s default is not a latency)
	DialTimeout  time.Duration `yaml:"-"`             // default 5 s
	// MaxMessageBytes is the broker's limit on one produce request's record batch (the topic's
	// max.message.bytes; MaxMessageBytesOf reads it). Writers keep every batch under 90% of it
	// (BatchBytes), so no batch is refused for its size; 0 = 1,000,000 (or what the caller reads
	// from the broker).
	MaxMessageBytes int `yaml:"max_message_bytes"`
}

// DefaultConfig is the configuration with every default filled in, except Brokers (no default)
// and MaxMessageBytes (0: ask the broker, or 1,000,000).
func DefaultConfig() Config {
	c := Config{}.withDefaults()
	c.MaxMessageBytes = 0
	return c
}

// Validate reports every key that is wrong, each error starting with the key's name. Zero values
// that have a default are fine.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker is required"))
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	if c.BatchTimeout < 0 || c.BatchTimeout > time.Second {
		errs = append(errs, fmt.Errorf("batch_timeout: %s is outside 0..1s (0: 2ms)", c.BatchTimeout))
	}
	if c.MaxMessageBytes != 0 && c.MaxMessageBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("max_message_bytes: %d is below 65536 (0 asks the broker)", c.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// DefaultMaxMessageBytes is the broker's default message.max.bytes (1,048,588) rounded down.
const DefaultMaxMessageBytes = 1_000_000

// BatchBytes is the most a writer puts in one produce batch, and so the largest single message it
// sends: 90% of MaxMessageBytes, leaving room for the record batch's own overhead (a few dozen
// bytes per record that kafka-go does not count).
func (c Config) BatchBytes() int {
	c = c.withDefaults()
	return c.MaxMessageBytes / 10 * 9
}

// ReaderQueueCapacity is the messages the consumer-group reader fetches ahead of its loop: 1000 (the group
// reader's queue and its partition readers' together, see GroupReader), but no more than readerQueueBytes of
// messages as large as the broker takes, and at least 100 (kafka-go's own default). A message
// count alone let a scorer working through a backlog of 1,200 dead-letter-bound messages of 1 MB
// each (every one under the broker's limit) queue a gigabyte of them: it peaked at 2.1 GB, past
// the manifest's 2Gi, and a scorer killed for it would meet the same backlog again at its restart.
// With 100 it peaked at 0.74 GB; small events (a few hundred bytes) fetch as fast either way
// (the pipeline bench within its noise). The feature feed's partition readers (tail.go) keep
// 1000: they apply as fast as they fetch (an API node peaked at 0.31 GB on the same backlog), and
// at 100 a replay of 200,000 small events looked up to a tenth slower.
func (c Config) ReaderQueueCapacity() int {
	c = c.withDefaults()
	return max(100, min(1000, readerQueueBytes/c.MaxMessageBytes))
}

// readerQueueBytes bounds what a reader's queue holds when every message is as large as the broker
// takes.
const readerQueueBytes = 64 << 20

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "riskflow"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 2 * time.Millisecond
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return c
}

func (c Config) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: c.ClientID, Timeout: c.DialTimeout, DualStack: true}
}

// fetchDialer is the dialer of a partition reader (a tail's, a consumer group's) that reads until
// ctx is done: its connections give a broker FetchAnswerSlack past a fetch's wait to answer
// (fetchConn), and a read on them ends when ctx is done — kafka-go's Reader.Close waits for the
// fetch in flight, which a hung broker would otherwise hold for the whole slack at every stop.
func (c Config) fetchDialer(ctx context.Context) *kafka.Dialer {
	d := c.dialer()
	d.DialFunc = func(dctx context.Context, network, address string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(dctx, network, address)
		if err != nil {
			return nil, err
		}
		fc := &fetchConn{Conn: conn, done: ctx.Done()}
		fc.stop = context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
		return fc, nil
	}
	return d
}

// FetchAnswerSlack is how long after a fetch's wait (50 ms) a partition reader waits for the
// broker's answer; Java clients wait up to request.timeout.ms (30 s). It bounds how long a reader
// takes to notice a hung broker, and to close while one of its fetches hangs.
const FetchAnswerSlack = 2 * time.Second

// fetchConn is a partition reader's connection. kafka-go uses a fetch's wait (MaxWait) as the
// read deadline of its answer, leaving the broker a quarter of the wait (12.5 ms of our 50) to
// send it: a broker that took longer — busy, a few milliseconds farther away than that, or the dev
// broker building an answer of a few thousand records under the race detector — had every answer
// given up on, the connection closed and the fetch asked again, for ever: the partition was never
// read (TestTailReadsFromABrokerSlowerThanTheFetchWait). fetchConn moves every read deadline in the
// future FetchAnswerSlack later (the wait the broker is asked for is kafka-go's, unchanged), gives
// reads that kafka-go leaves without a deadline — the partition lookup and version requests of a
// reader (re)connecting — RequestTimeout instead of for ever, and keeps a deadline in the past as
// it is (a caller cutting the connection short, as bound does). Once its reader's context is done
// every read ends at once.
//
// kafka-go sets a read deadline before every message of a batch (now + ReadBatchTimeout), and
// setting one costs about 300 ns (BenchmarkReadDeadline/raw): a fetchConn keeps the deadline it
// set while that lies between the one asked and FetchAnswerSlack after it — as it would have set
// it — so that a batch costs a few of them instead of one per message (/fetchConn).
type fetchConn struct {
	net.Conn
	done <-chan struct{} // the reader's context's
	stop func() bool     // unregisters the cut at done

	mu   sync.Mutex
	last time.Time // the read deadline set on Conn
}

func (c *fetchConn) SetReadDeadline(t time.Time) error {
	select {
	case <-c.done:
		return c.Conn.SetReadDeadline(time.Unix(1, 0))
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Kept without reading the clock (which costs as much as the deadline): a t just past, within
	// the slack, is a kafka-go deadline already missed and gets the slack as any; a caller cutting
	// the connection short asks one long past (bound: 1970).
	if !t.IsZero() && !c.last.Before(t) && !c.last.After(t.Add(FetchAnswerSlack)) {
		return nil
	}
	c.last = answerBy(t, time.Now())
	return c.Conn.SetReadDeadline(c.last)
}

func (c *fetchConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *fetchConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// answerBy is the read deadline a fetchConn sets when asked for t at now.
func answerBy(t, now time.Time) time.Time {
	switch {
	case t.IsZero():
		return now.Add(RequestTimeout)
	case t.Before(now):
		return t
	default:
		return t.Add(FetchAnswerSlack)
	}
}

// RequestTimeout bounds the requests sent on a kafka.Conn when the caller's context has no
// deadline of its own.
const RequestTimeout = 15 * time.Second

// bound makes the requests on conn give up at ctx's deadline (RequestTimeout from now without
// one) and as soon as ctx is done; call the returned func when done with conn. kafka-go's Conn
// methods take no context: against a broker that accepts connections but answers nothing (hung,
// stopped with SIGSTOP, a half-open connection) they waited for ever — the consumer-group lag
// kept its last reading through such an outage, and a node starting then ignored SIGTERM.
func bound(ctx context.Context, conn *kafka.Conn) (release func()) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(RequestTimeout)
	}
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// NewWriter returns a writer to topic. Messages are partitioned by key hash, acknowledged by all
// in-sync replicas, and sent once BatchSize messages are pending or BatchTimeout passed. A batch
// holds at most c.BatchBytes(); write through Produce to have larger messages rejected instead of
// failing the whole call.
func NewWriter(c Config, topic string) *kafka.Writer {
	c = c.withDefaults()
	return &kafka.Writer{
		Addr:         kafka.TCP(c.Brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchSize:    c.BatchSize,
		BatchBytes:   int64(c.BatchBytes()),
		BatchTimeout: c.BatchTimeout,
		RequiredAcks: kafka.RequireAll,
		MaxAttempts:  5,
		WriteTimeout: 10 * time.Second,
		ReadTimeout:  10 * time.Second,
		Transport:    &kafka.Transport{ClientID: c.ClientID, Dial: (&net.Dialer{Timeout: c.DialTimeout}).DialContext},
	}
}

// TopicSpec is a topic riskflow needs.
type TopicSpec struct {
	Name       string
	Partitions int
	// Configs are the topic's settings when it is created (e.g. cleanup.policy=compact).
	Configs map[string]string
}

// InputTopic is the spec of a topic producers outside riskflow write to (verify.events). It is
// created with compression.type=uncompressed: the broker then stores batches uncompressed, so
// max.message.bytes bounds what a batch decompresses to. Under the default (compression.type=
// producer) it bounds only the compressed bytes, and a zstd batch of a few kilobytes holding
// 300 MB of spaces was taken — every node reading the topic (scorers and API replicas alike, again
// at each replay) then inflated it in memory: 1.7 GB for an API node, 2.9 GB for a scorer, past
// the manifest's memory limits. Producers may still compress: the broker inflates, checks and
// stores the batch; the price is disk and fetch bytes (verify events are small JSON).
//
// Every topic a node reads is best created so (ReadTopic): a bomb on the lists topic, which every
// node reads from its start at every restart (it is compacted: the bomb stays), took a node from
// 0.17 to 1.6 GB.
func InputTopic(name string, partitions int) TopicSpec {
	return ReadTopic(TopicSpec{Name: name, Partitions: partitions})
}

// ReadTopic is t with compression.type=uncompressed added to its settings (see InputTopic): for a
// topic riskflow nodes read. riskflow's own writers do not compress, so it costs them nothing.
func ReadTopic(t TopicSpec) TopicSpec {
	cfg := map[string]string{"compression.type": InputTopicCompression}
	for k, v := range t.Configs {
		cfg[k] = v
	}
	t.Configs = cfg
	return t
}

// InputTopicCompression is the compression.type of an InputTopic.
const InputTopicCompression = "uncompressed"

// EnsureTopics creates the topics that do not exist yet (replication factor 1 unless the cluster
// has more brokers; existing topics are left alone), and returns once every partition of each
// topic it asked for answers. A topic another client creates between this call's look at the
// metadata and its request (two nodes starting together, two writers restoring a deleted topic)
// is logged as found, not as created, and waited for as the other client made it.
func EnsureTopics(ctx context.Context, c Config, topics []TopicSpec, log *slog.Logger) error {
	c = c.withDefaults()
	if len(c.Brokers) == 0 {
		return errors.New("ensure topics: no brokers configured")
	}
	var conn *kafka.Conn
	var err error
	for _, b := range c.Brokers {
		if conn, err = c.dialer().DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ensure topics: dial %v: %w", c.Brokers, err)
	}
	defer conn.Close()
	defer bound(ctx, conn)()
	brokers, err := conn.Brokers()
	if err != nil {
		return fmt.Errorf("ensure topics: list brokers: %w", err)
	}
	rf := min(len(brokers), 3)
	existing := map[string]int{} // topic → partitions
	if parts, err := conn.ReadPartitions(); err == nil {
		for _, p := range parts {
			existing[p.Topic]++
		}
	}
	var missing []TopicSpec
	for _, t := range topics {
		n, ok := existing[t.Name]
		switch {
		case !ok:
			missing = append(missing, t)
		case n < t.Partitions:
			// Left as it is (partitions are added, never taken away, and adding moves keys), but
			// said: a consumer group spreads a topic's work over at most its partitions, so the
			// scorers past n would idle, unsaid.
			log.Warn("topic has fewer partitions than riskflow makes: at most that many processes of one consumer group share its work; add partitions (kafka-topics.sh --alter --partitions) to scale further",
				"topic", t.Name, "partitions", n, "kafka.partitions", t.Partitions)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return createAndWait(ctx, c, missing, rf, log)
}

// createAndWait creates topics (createTopics) and waits until every one of them answers
// (waitTopics), whoever created it.
func createAndWait(ctx context.Context, c Config, topics []TopicSpec, rf int, log *slog.Logger) error {
	want, err := createTopics(ctx, c, topics, rf, log)
	if err != nil {
		return err
	}
	return waitTopics(ctx, c, want)
}

// createTopics asks the controller to create topics with replication factor rf, and logs for
// each whether it created it or found it there: another client created it since the caller looked
// (TopicAlreadyExists). It returns the partitions to wait for per topic: the spec's for a topic it
// created, 0 for one it found (as many as the metadata lists: the other client's count may not be
// the spec's). kafka-go's Conn.CreateTopics hides which topics already existed: every process that
// lost the race logged "created topic" too, and waited for the spec's partitions — for 30 s and
// then failed when the other client had made fewer.
func createTopics(ctx context.Context, c Config, topics []TopicSpec, rf int, log *slog.Logger) (map[string]int, error) {
	tr := &kafka.Transport{ClientID: c.ClientID, Dial: (&net.Dialer{Timeout: c.DialTimeout}).DialContext}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: RequestTimeout, Transport: tr}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: rf}
		for k, v := range t.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("ensure topics: create: %w", err)
	}
	want := map[string]int{}
	var errs []error
	for _, t := range topics {
		switch err := resp.Errors[t.Name]; {
		case err == nil:
			log.Info("created topic", "topic", t.Name, "partitions", t.Partitions)
			want[t.Name] = t.Partitions
		case errors.Is(err, kafka.TopicAlreadyExists):
			log.Info("topic already exists: another client created it meanwhile", "topic", t.Name)
			want[t.Name] = 0
		default:
			errs = append(errs, fmt.Errorf("ensure topics: create %s: %w", t.Name, err))
		}
	}
	return want, errors.Join(errs...)
}

// waitTopics waits until each topic of want is in the metadata with at least want[topic]
// partitions (at least one), each with a leader that serves it: KRaft names a leader in the
// metadata a moment before the partition takes requests, and readers started in between failed
// with "Not Leader For Partition" (logged as an outage at every first start). It polls the
// metadata, so a topic another client created answers as soon as its partitions do.
func waitTopics(ctx context.Context, c Config, want map[string]int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting string
		for topic, n := range want {
			if !topicServed(ctx, c, topic, max(n, 1)) {
				waiting = topic
				break
			}
		}
		if waiting == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ensure topics: %s: partitions have no leader after 30 s", waiting)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicServed reports whether the metadata lists at least n partitions of topic, and every one
// listed has a leader that answers its offsets.
func topicServed(ctx context.Context, c Config, topic string, n int) bool {
	parts, err := partitionsOf(ctx, c, topic)
	if err != nil || len(parts) < n {
		return false
	}
	for _, p := range parts {
		if p.Leader.Host == "" || !partitionServed(ctx, c, topic, p.ID) {
			return false
		}
	}
	return true
}

// dialLeader dials the leader of partition p of topic, asking each of c's brokers in turn which
// it is until one answers. Asking only the first — as every such dial did — failed while that one
// broker was down though the others served: a node started then (kafka-0 of three restarting)
// waited 30 s to create its topics, then never read its feed or lists, unready for good.
func dialLeader(ctx context.Context, c Config, topic string, p int) (*kafka.Conn, error) {
	var err error
	for _, b := range c.Brokers {
		var conn *kafka.Conn
		if conn, err = c.dialer().DialLeader(ctx, "tcp", b, topic, p); err == nil || ctx.Err() != nil {
			return conn, err
		}
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return nil, err // the broker answered: the others would say the same
		}
	}
	if err == nil {
		err = errors.New("no brokers configured")
	}
	return nil, err
}

// partitionServed reports whether partition p of topic answers its leader's offsets.
func partitionServed(ctx context.Context, c Config, topic string, p int) bool {
	conn, err := dialLeader(ctx, c, topic, p)
	if err != nil {
		return false
	}
	defer conn.Close()
	defer bound(ctx, conn)()
	_, _, err = conn.ReadOffsets()
	return err == nil
}

// Partitions lists the partition ids of topic that have a leader.
func Partitions(ctx context.Context, c Config, topic string) ([]int, error) {
	parts, err := partitionsOf(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(parts))
	for _, p := range parts {
		if p.Leader.Host != "" {
			ids = append(ids, p.ID)
		}
	}
	return ids, nil
}

// partitionsOf returns the partitions of topic the metadata lists, with a leader or not. Its
// metadata request does not allow the broker to create the topic: kafka-go's Conn.ReadPartitions
// asks with AllowAutoTopicCreation, so on a broker with auto.create.topics.enable (Kafka's
// default) riskflow's own look at a deleted topic — the consumer-group lag every few seconds, a
// tail's start, a writer checking the topic it created again — created it anew with the broker's
// defaults (num.partitions, compression.type=producer) before riskflow's writers could create it
// with its settings.
func partitionsOf(ctx context.Context, c Config, topic string) ([]kafka.Partition, error) {
	c = c.withDefaults()
	var lastErr error
	for _, b := range c.Brokers {
		tr := &kafka.Transport{ClientID: c.ClientID, Dial: (&net.Dialer{Timeout: c.DialTimeout}).DialContext}
		client := &kafka.Client{Addr: kafka.TCP(b), Timeout: RequestTimeout, Transport: tr}
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		tr.CloseIdleConnections()
		switch {
		case err != nil:
			lastErr = err
			continue
		case len(md.Topics) != 1:
			lastErr = fmt.Errorf("the broker answered for %d topics", len(md.Topics))
			continue
		case md.Topics[0].Error != nil:
			return nil, fmt.Errorf("list partitions of %s: %w", topic, md.Topics[0].Error)
		}
		return md.Topics[0].Partitions, nil
	}
	return nil, fmt.Errorf("list partitions of %s: %w", topic, lastErr)
}

// MaxMessageBytesOf asks the broker for the smallest max.message.bytes of topics (each topic's
// own setting, or the broker default it inherits). Topics that do not exist yet are skipped; with
// none answered it returns DefaultMaxMessageBytes and the error.
func MaxMessageBytesOf(ctx context.Context, c Config, topics ...string) (int, error) {
	c = c.withDefaults()
	if len(c.Brokers) == 0 {
		return DefaultMaxMessageBytes, errors.New("read max.message.bytes: no brokers configured")
	}
	tr := &kafka.Transport{ClientID: c.ClientID, Dial: (&net.Dialer{Timeout: c.DialTimeout}).DialContext}
	defer tr.CloseIdleConnections() // a transport's connections stay open until closed (endOffsets)
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: tr}
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t, ConfigNames: []string{"max.message.bytes"},
		})
	}
	resp, err := client.DescribeConfigs(ctx, req)
	if err != nil {
		return DefaultMaxMessageBytes, fmt.Errorf("read max.message.bytes of %v: %w", topics, err)
	}
	best := 0
	for _, r := range resp.Resources {
		if r.Error != nil {
			continue
		}
		for _, e := range r.ConfigEntries {
			if n, err := strconv.Atoi(e.ConfigValue); err == nil && n > 0 && (best == 0 || n < best) {
				best = n
			}
		}
	}
	if best == 0 {
		return DefaultMaxMessageBytes, fmt.Errorf("read max.message.bytes of %v: no topic answered", topics)
	}
	return best, nil
}

// TopicSetting reads one setting of topic as the broker applies it (the topic's own, or the
// broker default it inherits).
func TopicSetting(ctx context.Context, c Config, topic, name string) (string, error) {
	c = c.withDefaults()
	if len(c.Brokers) == 0 {
		return "", errors.New("read topic setting: no brokers configured")
	}
	tr := &kafka.Transport{ClientID: c.ClientID, Dial: (&net.Dialer{Timeout: c.DialTimeout}).DialContext}
	defer tr.CloseIdleConnections() // a transport's connections stay open until closed (endOffsets)
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: tr}
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name}}}})
	if err != nil {
		return "", fmt.Errorf("read %s of %s: %w", name, topic, err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return "", fmt.Errorf("read %s of %s: %w", name, topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue, nil
			}
		}
	}
	return "", fmt.Errorf("read %s of %s: not answered", name, topic)
}
