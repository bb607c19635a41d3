package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/backtest"
)

func smallConfig() Config {
	return Config{Seed: 11, Rate: 20, Duration: 5 * time.Minute, AttackShare: 0.2}
}

func TestWriteJSONL(t *testing.T) {
	t.Parallel()
	want := generate(t, smallConfig())
	g, err := New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	var events, labels bytes.Buffer
	n, err := WriteJSONL(context.Background(), &events, g, &labels)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("wrote %d events, want %d", n, len(want))
	}
	written := bytes.Clone(events.Bytes())
	es, ls := bufio.NewScanner(&events), bufio.NewScanner(&labels)
	i := 0
	for ; es.Scan(); i++ {
		ev, err := schemas.DecodeEvent(es.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !ls.Scan() {
			t.Fatalf("labels end at line %d", i+1)
		}
		var lab struct {
			EventID string `json:"event_id"`
			AppID   string `json:"app_id"`
			Label   string `json:"label"`
			Attack  bool   `json:"attack"`
		}
		dec := json.NewDecoder(bytes.NewReader(ls.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&lab); err != nil {
			t.Fatalf("label line %d: %v", i+1, err)
		}
		if ev.EventID != want[i].Event.EventID || lab.EventID != ev.EventID || lab.AppID != ev.AppID || lab.Label != want[i].Label || lab.Attack != want[i].Attack {
			t.Fatalf("line %d: event %s, label %+v; want %s labelled %s", i+1, ev.EventID, lab, want[i].Event.EventID, want[i].Label)
		}
	}
	if i != n || ls.Scan() {
		t.Errorf("%d event lines for %d events, or extra label lines", i, n)
	}

	// Labels are optional.
	g, _ = New(smallConfig())
	var again bytes.Buffer
	if n2, err := WriteJSONL(context.Background(), &again, g, nil); err != nil || n2 != n || !bytes.Equal(again.Bytes(), written) {
		t.Errorf("without labels: %d events, %v, same bytes %v", n2, err, bytes.Equal(again.Bytes(), written))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteJSONLError(t *testing.T) {
	t.Parallel()
	g, _ := New(smallConfig())
	if _, err := WriteJSONL(context.Background(), failingWriter{}, g, nil); err == nil {
		t.Error("no error from a failing events writer")
	}
	g, _ = New(smallConfig())
	if _, err := WriteJSONL(context.Background(), &bytes.Buffer{}, g, failingWriter{}); err == nil {
		t.Error("no error from a failing labels writer")
	}
}

// cancelOnWrite is a writer that cancels its context at its first write (Ctrl-C while a file is
// being written).
type cancelOnWrite struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return c.Buffer.Write(p)
}

// A Ctrl-C stops the writing at the next event: what was written is whole lines, one label per
// event, and the error says it stopped.
func TestWriteJSONLStops(t *testing.T) {
	t.Parallel()
	all := generate(t, smallConfig())
	g, _ := New(smallConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := &cancelOnWrite{cancel: cancel}
	var labels bytes.Buffer
	n, err := WriteJSONL(ctx, events, g, &labels)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n == 0 || n >= len(all) {
		t.Fatalf("%d events written, want some of %d", n, len(all))
	}
	if !bytes.HasSuffix(events.Bytes(), []byte("\n")) || bytes.Count(events.Bytes(), []byte("\n")) != n || bytes.Count(labels.Bytes(), []byte("\n")) != n {
		t.Errorf("%d events: %d event lines, %d label lines, want whole lines, one each", n, bytes.Count(events.Bytes(), []byte("\n")), bytes.Count(labels.Bytes(), []byte("\n")))
	}
}

func TestBatches(t *testing.T) {
	t.Parallel()
	want := generate(t, smallConfig())
	g, _ := New(smallConfig())
	var got []Labeled
	var sizes []int
	err := Batches(g, 100, func(b []Labeled) error {
		sizes = append(sizes, len(b))
		got = append(got, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events in batches, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Event.EventID != want[i].Event.EventID {
			t.Fatalf("event %d: %s, want %s", i, got[i].Event.EventID, want[i].Event.EventID)
		}
	}
	for i, s := range sizes {
		if s != 100 && (i != len(sizes)-1 || s == 0 || s > 100) {
			t.Fatalf("batch sizes %v", sizes)
		}
	}

	stop := errors.New("broker down")
	g, _ = New(smallConfig())
	calls := 0
	err = Batches(g, 10, func([]Labeled) error {
		if calls++; calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("after %d calls: %v, want the callback's error at the third", calls, err)
	}
	if err := Batches(g, 0, func([]Labeled) error { return nil }); err == nil {
		t.Error("batch size 0 accepted")
	}
}

// The labels file is what `riskflow backtest --labels` reads: the README's loadgen → backtest
// workflow.
func TestLabelsReadByBacktest(t *testing.T) {
	t.Parallel()
	g, err := New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := generate(t, smallConfig())
	var events, labels bytes.Buffer
	if _, err := WriteJSONL(context.Background(), &events, g, &labels); err != nil {
		t.Fatal(err)
	}
	got, err := backtest.ParseLabels(&labels)
	if err != nil {
		t.Fatalf("backtest cannot read loadgen's labels: %v", err)
	}
	attacks := 0
	for _, l := range want {
		if a, ok := got[backtest.LabelKey{AppID: l.Event.AppID, EventID: l.Event.EventID}]; !ok || a != l.Attack {
			t.Fatalf("%s: label %v (present %v), want attack=%v", l.Event.EventID, a, ok, l.Attack)
		}
		if l.Attack {
			attacks++
		}
	}
	if len(got) != len(want) || attacks == 0 || attacks == len(want) {
		t.Errorf("%d labels for %d events, %d attacks: the check proves little", len(got), len(want), attacks)
	}
}
