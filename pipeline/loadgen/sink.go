package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// LabelLine is one line of the ground-truth side file (backtest.ParseLabels reads it).
type LabelLine struct {
	EventID string `json:"event_id"`
	AppID   string `json:"app_id"` // event ids are unique per app: labels key by (app_id, event_id)
	Label   string `json:"label"`
	Attack  bool   `json:"attack"`
}

// WriteJSONL writes every remaining event of g to w, one VerifyEvent v1 JSON object per line, and
// — when labels is not nil — the ground truth to labels, one {"event_id","app_id","label","attack"} object
// per line in the same order. It returns the number of events written. Both writers are buffered
// here and flushed before returning. When ctx is done (Ctrl-C) it stops at the next event and
// returns ctx's error with the events written so far, their lines and labels whole and flushed.
func WriteJSONL(ctx context.Context, w io.Writer, g *Generator, labels io.Writer) (int, error) {
	ew := bufio.NewWriterSize(w, 64<<10)
	var lw *bufio.Writer
	if labels != nil {
		lw = bufio.NewWriterSize(labels, 16<<10)
	}
	n := 0
	var stopped error
	for {
		if stopped = ctx.Err(); stopped != nil {
			break
		}
		l, ok := g.Next()
		if !ok {
			break
		}
		line, err := json.Marshal(&l.Event)
		if err != nil {
			return n, fmt.Errorf("loadgen: encode event %s: %w", l.Event.EventID, err)
		}
		if _, err := ew.Write(append(line, '\n')); err != nil {
			return n, fmt.Errorf("loadgen: write events: %w", err)
		}
		if lw != nil {
			line, err := json.Marshal(LabelLine{EventID: l.Event.EventID, AppID: l.Event.AppID, Label: l.Label, Attack: l.Attack})
			if err != nil {
				return n, fmt.Errorf("loadgen: encode label of %s: %w", l.Event.EventID, err)
			}
			if _, err := lw.Write(append(line, '\n')); err != nil {
				return n, fmt.Errorf("loadgen: write labels: %w", err)
			}
		}
		n++
	}
	if err := ew.Flush(); err != nil {
		return n, fmt.Errorf("loadgen: write events: %w", err)
	}
	if lw != nil {
		if err := lw.Flush(); err != nil {
			return n, fmt.Errorf("loadgen: write labels: %w", err)
		}
	}
	if stopped != nil {
		return n, fmt.Errorf("loadgen: stopped after %d events: %w", n, stopped)
	}
	return n, nil
}

// Batches hands the remaining events of g to fn in batches of n (the last one may be shorter),
// for callers that send to Kafka or over HTTP. The slice is reused for the next batch once fn
// returns: copy what must outlive the call. The first error from fn stops the run and is returned,
// wrapped with the batch number.
func Batches(g *Generator, n int, fn func([]Labeled) error) error {
	if n <= 0 {
		return errors.New("loadgen: batch size must be positive")
	}
	batch := make([]Labeled, 0, n)
	for i := 0; ; i++ {
		batch = batch[:0]
		for len(batch) < n {
			l, ok := g.Next()
			if !ok {
				break
			}
			batch = append(batch, l)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return fmt.Errorf("loadgen: batch %d: %w", i, err)
		}
		if len(batch) < n {
			return nil
		}
	}
}
