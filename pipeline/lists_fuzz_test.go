package pipeline

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/schemas"
)

// FuzzListsMessage feeds messages of the shared lists topic (what any producer with access may
// write to it) to a node's SharedLists, after one good entry. Whatever the message, the node
// neither panics nor loses the good entry; an entry it keeps is one line that parses; and what
// it logs shows no phone number.
//
//	go test -run '^$' -fuzz '^FuzzListsMessage$' -fuzztime 5m ./pipeline
func FuzzListsMessage(f *testing.F) {
	entry := func(action, kind, value string) (string, string) {
		e := ListEntry{Action: action, Kind: kind, Value: value, Who: "alice", Why: "test"}
		e.ID = ListEntryID(e.Line())
		b, _ := json.Marshal(e)
		return e.ID, string(b)
	}
	for _, e := range [][3]string{{"block", "ip", "198.51.100.1"}, {"allow", "phone", "13812348000"}, {"block", "phone_hash", strings.Repeat("ab", 32)},
		{"block", "device", "d-1"}, {"block", "prefix", "1380013"}, {"block", "asn", "4134"}, {"block", "ip", "1.2.3.4\nblock ip 0.0.0.0/0"},
		{"block", "phone", "+86 138 1234 8000"}, {"block", "device", "tel:13812348000"}} {
		k, v := entry(e[0], e[1], e[2])
		f.Add([]byte(k), []byte(v))
	}
	f.Add([]byte("block 138 1234 5678"), []byte(`{"id":"x"}`))
	f.Add([]byte("13812348000"), []byte(nil))
	goodID, goodValue := entry("block", "ip", "203.0.113.9")
	f.Fuzz(func(t *testing.T, key, value []byte) {
		var buf syncbuf.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // its digits are no one's number
			}
			return a
		}}))
		target := &listsTarget{}
		l := NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, target, log)
		l.apply([]kafka.Message{{Key: []byte(goodID), Value: []byte(goodValue), Offset: 0, HighWaterMark: 1}})
		if string(key) == goodID {
			return
		}
		l.apply([]kafka.Message{{Key: key, Value: value, Offset: 1, HighWaterMark: 2}})
		_, entries := l.Snapshot()
		found := false
		for _, e := range entries {
			if e.ID == goodID {
				found = true
			}
			if err := checkEntry(e); err != nil {
				t.Fatalf("kept entry %+v, which does not parse: %v", e, err)
			}
		}
		if !found || target.n.Load() < 1 {
			t.Fatalf("message %q=%q lost the good entry: %+v, %d listed", key, value, entries, target.n.Load())
		}
		if got := buf.String(); schemas.MaskPhones(got) != got {
			t.Fatalf("message %q=%q: the log shows a phone number: %s", key, value, got)
		}
	})
}
