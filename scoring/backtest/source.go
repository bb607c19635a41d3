package backtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
		return parseJSONLabels(data)
	}
	out := Labels{}
	var bad labelErrors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxLabelLine)
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
			bad.add(line, "want `event_id,label` or `app_id,event_id,label`, got %s", schemas.Excerpt(text, 80))
			continue
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
			bad.add(line, "label %s is not 1/true/attack/fraud or 0/false/benign/legit", schemas.Excerpt(f[len(f)-1], 24))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("backtest: labels line %d: longer than %d bytes (one label a line)", line+1, maxLabelLine)
		}
		return nil, fmt.Errorf("backtest: read labels: %w", err)
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// maxLabelLine is the longest line of a labels file in the CSV form.
const maxLabelLine = 1 << 20

// maxLabelErrors is how many wrong lines of a labels file are named one by one.
const maxLabelErrors = 20

// labelErrors are the wrong lines of a labels file: every one is named (the first
// maxLabelErrors, then how many more), so that a file is corrected in one go.
type labelErrors struct {
	lines []string
	n     int
}

func (b *labelErrors) add(line int, format string, args ...any) {
	b.n++
	if len(b.lines) < maxLabelErrors {
		b.lines = append(b.lines, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
}

func (b *labelErrors) err() error {
	switch b.n {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("backtest: labels %s", b.lines[0])
	}
	msg := fmt.Sprintf("backtest: labels: %d wrong lines:\n  %s", b.n, strings.Join(b.lines, "\n  "))
	if b.n > len(b.lines) {
		msg += fmt.Sprintf("\n  and %d more", b.n-len(b.lines))
	}
	return errors.New(msg)
}

// countNewlines counts the line ends in b (a variable so that a test can count the bytes read).
var countNewlines = func(b []byte) int { return bytes.Count(b, []byte("\n")) }

// jsonLabel is one object of a JSON-lines labels file: loadgen's (event_id, app_id, attack, and
// the scenario as label) or a stored label's (label fraud|legit, note).
type jsonLabel struct {
	EventID    *string `json:"event_id"`
	AppID      string  `json:"app_id"`
	Attack     *bool   `json:"attack"`
	Label      string  `json:"label"`
	Note       string  `json:"note"` // a stored label's, read past
	DecisionID string  `json:"decision_id"`
}

// parseJSONLabels reads one JSON object of event id → bool, or a stream of jsonLabel objects
// (one per line, or written over several), each wrong one named by the line it starts on.
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
	var bad labelErrors
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	// The line an object starts on is counted on from the previous object's: counted from the
	// top for every object, a loadgen file of 365,000 lines took over 10 minutes to read.
	line, counted := 1, int64(0)
	for {
		at := dec.InputOffset()
		for at < int64(len(data)) && strings.IndexByte(" \t\r\n", data[at]) >= 0 {
			at++
		}
		line += countNewlines(data[counted:at])
		counted = at
		var l jsonLabel
		err := dec.Decode(&l)
		if err == io.EOF {
			break
		}
		if err != nil {
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &te):
				bad.add(line, "%s: want %s, got a JSON %s", te.Field, map[string]string{"bool": "true or false", "string": "a string"}[te.Type.String()], te.Value)
				continue
			case strings.HasPrefix(err.Error(), "json: unknown field "):
				bad.add(line, "%s: unknown field (want event_id, app_id and attack true|false or label fraud|legit)", strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
				continue
			}
			// Invalid JSON: the rest cannot be read.
			bad.add(line, "invalid JSON: %s (want one object per line: {\"event_id\": …, \"attack\": true|false} or {\"event_id\": …, \"label\": \"fraud\"|\"legit\"}, or one object of event id → bool)", strings.TrimPrefix(err.Error(), "json: "))
			break
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
		switch {
		case l.DecisionID != "":
			bad.add(line, "decision_id: a decision's label is resolved to its events in ClickHouse: store it with riskflow label (backtest reads the stored labels), or label the event_id here")
		case l.EventID == nil || *l.EventID == "":
			bad.add(line, "event_id: is required")
		case l.Attack == nil && l.Label != "":
			bad.add(line, "label: %s is not fraud or legit (or give attack: true|false)", schemas.Excerpt(l.Label, 24))
		case l.Attack == nil:
			bad.add(line, "attack: is required (true|false), or label fraud|legit")
		default:
			out[LabelKey{AppID: l.AppID, EventID: *l.EventID}] = *l.Attack
		}
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return out, nil
}
