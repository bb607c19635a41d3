package backtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// SliceSource is a Source over events held in memory (tests, small files). The events must
// already be in time order.
type SliceSource struct {
	events []Event
	pos    int
}

// NewSliceSource returns a Source yielding events in order.
func NewSliceSource(events []Event) *SliceSource { return &SliceSource{events: events} }

// Next implements Source.
func (s *SliceSource) Next(ctx context.Context) (Event, bool, error) {
	if s.pos >= len(s.events) {
		return Event{}, false, nil
	}
	s.pos++
	return s.events[s.pos-1], true, nil
}

// NewScorer returns a newScorer function for Run: scoring.New(cfg, opts...) with a phone
// hasher under a fixed throwaway key placed before opts (an option of the caller's wins).
// A replay never uses the hashes its scorers compute: they are hashes of stand-in numbers.
// Pass the production scorer's other options (WithGeo, WithLists, the windows in cfg) so the
// replay computes the same features.
func NewScorer(cfg scoring.Config, opts ...scoring.Option) func() (*scoring.Scorer, error) {
	return func() (*scoring.Scorer, error) {
		all := append([]scoring.Option{scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("riskflow backtest stand-ins")))}, opts...)
		return scoring.New(cfg, all...)
	}
}

// LabelKey is one event of one app: event ids are unique per app (tenant), not across apps.
// AppID "" — a labels file that names no app — stands for the event id in every app.
type LabelKey struct {
	AppID   string
	EventID string
}

// Labels says which events were attacks (true) and which were legitimate (false).
type Labels map[LabelKey]bool

// Of returns the label of event id of app: its own, else one given for the id without an app.
func (l Labels) Of(app, id string) (attack, ok bool) {
	if attack, ok = l[LabelKey{app, id}]; ok {
		return attack, true
	}
	attack, ok = l[LabelKey{"", id}]
	return attack, ok
}

// Merge adds other's labels to l; other's win where both label an event.
func (l Labels) Merge(other Labels) {
	for k, v := range other {
		l[k] = v
	}
}

// ParseLabels reads labels for Options.Labels: which events were attacks. Three forms are
// accepted:
//
//   - a JSON object, event id → true (attack) or false (legitimate):
//     {"ev-1": true, "ev-2": false}
//   - JSON lines as `riskflow loadgen --labels` writes them, one object per event, app_id
//     optional: {"event_id":"ev-1","app_id":"app1","label":"farm_burst","attack":true}
//   - lines of `event_id,label` or `app_id,event_id,label` (a comma, tab or spaces between
//     them), where label is 1/true/attack/fraud or 0/false/benign/legit; blank lines and lines
//     starting with '#' are skipped, and so is a first line that is a header
//     (`event_id,label`, `app_id,event_id,label`).
//
// A label without an app applies to the event id in every app (see Labels.Of).
func ParseLabels(r io.Reader) (Labels, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("backtest: read labels: %w", err)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseJSONLabels(t)
	}
	out := Labels{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line, rows := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rows++
		f := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\t' || r == ' ' })
		if len(f) != 2 && len(f) != 3 {
			return nil, fmt.Errorf("backtest: labels line %d: want `event_id,label` or `app_id,event_id,label`, got %q", line, text)
		}
		key := LabelKey{EventID: f[0]}
		if len(f) == 3 {
			key = LabelKey{AppID: f[0], EventID: f[1]}
		}
		switch strings.ToLower(f[len(f)-1]) {
		case "1", "true", "attack", "fraud":
			out[key] = true
		case "0", "false", "benign", "legit":
			out[key] = false
		case "label":
			if rows == 1 {
				continue
			}
			fallthrough
		default:
			return nil, fmt.Errorf("backtest: labels line %d: label %q is not 1/true/attack/fraud or 0/false/benign/legit", line, f[len(f)-1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("backtest: read labels: %w", err)
	}
	return out, nil
}

// labelLine is one line of loadgen's labels file.
type labelLine struct {
	EventID *string `json:"event_id"`
	AppID   string  `json:"app_id"`
	Attack  *bool   `json:"attack"`
}

// parseJSONLabels reads one JSON object of event id → bool, or a stream of labelLine objects.
func parseJSONLabels(data []byte) (Labels, error) {
	var m map[string]bool
	if json.Unmarshal(data, &m) == nil {
		out := make(Labels, len(m))
		for id, v := range m {
			out[LabelKey{EventID: id}] = v
		}
		return out, nil
	}
	out := Labels{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	for n := 1; ; n++ {
		var l struct {
			labelLine
			Label string `json:"label"`
			Note  string `json:"note"` // a stored label's, read past
		}
		if err := dec.Decode(&l); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("backtest: labels: object %d: %w (want {\"event_id\": …, \"attack\": true|false} or {\"event_id\": …, \"label\": \"fraud\"|\"legit\"} per line, or one object of event id → bool)", n, err)
		}
		if l.Attack == nil {
			// A label as riskflow label and POST /v1/admin/labels take it ({"app_id", "event_id",
			// "label": "fraud"|"legit"}), as the CSV form reads it. loadgen's lines say attack, and
			// their label is the scenario's name.
			switch l.Label {
			case "fraud":
				l.Attack = new(bool)
				*l.Attack = true
			case "legit":
				l.Attack = new(bool)
			}
		}
		if l.EventID == nil || *l.EventID == "" || l.Attack == nil {
			return nil, fmt.Errorf("backtest: labels: object %d: event_id and attack (or label fraud|legit) are required", n)
		}
		out[LabelKey{AppID: l.AppID, EventID: *l.EventID}] = *l.Attack
	}
}
