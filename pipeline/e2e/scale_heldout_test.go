//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// netDevicePrefixStream is a recorded stream of another shape than farmStream's: a /24 farm (30
// numbers, each from its own address of one datacenter /24, in 6 minutes), a device farm (14
// numbers on one device over an hour) and a per-app number-block burst (20 numbers of one block in
// one app in 5 minutes), in four apps with filler traffic over many blocks, keyed by number so
// that every farm spreads over all partitions.
func netDevicePrefixStream(base time.Time) []kafka.Message {
	return farmsAmidFiller(base, "h", 2000, rand.New(rand.NewPCG(10, 24)))
}

// farmsAmidFiller builds netDevicePrefixStream's shape — the farms "net-NN", "dev-NN" and
// "pfx-NN" in apps <p>a-a, <p>a-b and <p>a-c — amid filler events over the hour from base, in
// time order, unstamped (the producer stamps them when it sends them).
func farmsAmidFiller(base time.Time, p string, filler int, rng *rand.Rand) []kafka.Message {
	var msgs []kafka.Message
	add := func(id, app, phone, ip, device string, ts time.Time) {
		ev := map[string]any{"event_id": id, "ts": ts.UnixMilli(), "app_id": app, "flow": "one_click_login",
			"phone": phone, "ip": ip, "carrier": "CM", "platform": "android", "outcome": "success"}
		if device != "" {
			ev["device_id"] = device
		}
		b, _ := json.Marshal(ev)
		msgs = append(msgs, kafka.Message{Key: []byte(phone), Value: b, Time: ts})
	}
	apps := []string{p + "a-a", p + "a-b", p + "a-c", p + "a-d"}
	for i := 0; i < filler; i++ {
		add(fmt.Sprintf("%sfill-%05d", p, i), apps[i%4], fmt.Sprintf("1%d%04d%04d", 35+i%4, rng.IntN(10000), rng.IntN(10000)),
			fmt.Sprintf("183.%d.%d.%d", 1+rng.IntN(60), rng.IntN(256), 1+rng.IntN(254)), fmt.Sprintf("%sd-%d", p, i),
			base.Add(time.Duration(rng.IntN(60*60*1000))*time.Millisecond))
	}
	for i := 0; i < 30; i++ {
		add(fmt.Sprintf("net-%02d", i), apps[0], fmt.Sprintf("1380%07d", rng.IntN(10000000)), fmt.Sprintf("47.92.11.%d", 10+i), "",
			base.Add(40*time.Minute+time.Duration(i)*12*time.Second))
	}
	for i := 0; i < 14; i++ {
		add(fmt.Sprintf("dev-%02d", i), apps[1], fmt.Sprintf("1590%07d", rng.IntN(10000000)), fmt.Sprintf("183.15.%d.9", i), "rig-9",
			base.Add(time.Duration(i)*4*time.Minute))
	}
	for i := 0; i < 20; i++ {
		add(fmt.Sprintf("pfx-%02d", i), apps[2], fmt.Sprintf("1351234%04d", i*37), fmt.Sprintf("183.16.%d.%d", i, 1+rng.IntN(254)), fmt.Sprintf("pd-%d", i),
			base.Add(50*time.Minute+time.Duration(i)*15*time.Second))
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Time.Before(msgs[j].Time) })
	for i := range msgs {
		msgs[i].Time = time.Time{}
	}
	return msgs
}

// verdict is what one event got: its score and, per tag, the first number of the tag's reason.
type verdict struct {
	score  int
	counts map[string]int
}

// runStream plays the stream through n scorer processes in one group and returns every event's
// verdict.
func runStream(t *testing.T, scorers int, stream []kafka.Message) map[string]verdict {
	e, procs := playStream(t, scorers, stream)
	out := map[string]verdict{}
	for id, vs := range scoreVerdicts(t, e.scores, len(stream)) {
		out[id] = vs[len(vs)-1] // the last one read, as a re-delivery's record replaces the first
	}
	if len(out) != len(stream) {
		t.Fatalf("%d scorers: %d distinct events scored, want %d", scorers, len(out), len(stream))
	}
	for _, p := range procs {
		p.stop(syscall.SIGTERM)
	}
	return out
}

// A held-out shape for "many nodes, same verdicts": a /24 farm, a device farm and a per-app block
// burst, through 1, 2 and 3 scorers of one group. The stream is a recording played back in a burst
// (its events an hour older than their Kafka stamps), so the scorers wait for their feeds by event
// time, and every event's score and every count in its reasons equal the single scorer's. (With
// stamps alone, 2 scorers on a loaded machine counted 20 numbers on the /24 where one counted 23.)
func TestScorersAgreeOnNetworkDeviceAndPrefixFarms(t *testing.T) {
	stream := netDevicePrefixStream(time.Now().UTC().Add(-65 * time.Minute).Truncate(time.Second))
	one := runStream(t, 1, stream)
	peak := func(vs map[string]verdict, prefix, tag string) int {
		best := 0
		for id, v := range vs {
			if len(id) > len(prefix) && id[:len(prefix)] == prefix {
				best = max(best, v.counts[tag])
			}
		}
		return best
	}
	if n, d, p := peak(one, "net-", "phones_per_ip"), peak(one, "dev-", "phones_per_device"), peak(one, "pfx-", "prefix_burst"); n < 29 || d != 14 || p < 19 {
		t.Fatalf("one scorer: %d numbers on the /24 (want ≥ 29 of 30), %d on the device (want 14), %d in the block (want ≥ 19 of 20)", n, d, p)
	}
	for _, n := range []int{2, 3} {
		got := runStream(t, n, stream)
		if diff := compareVerdicts(t, fmt.Sprintf("%d scorers", n), one, got); diff > 0 {
			t.Errorf("%d scorers: %d of %d events got another verdict or another count", n, diff, len(one))
		}
	}
}
