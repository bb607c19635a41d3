package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Label values: what a person concluded about a decision or an event.
const (
	LabelFraud = "fraud"
	LabelLegit = "legit"
)

// Label marks one decision (DecisionID) or one event (EventID) of an app as fraud or legit; exactly
// one of the two ids is set. The labels table keeps the latest label per (app_id, target): a
// correction is a new label. LabeledBy is set by who stores it (the admin API, the CLI), never
// taken from a caller; LabeledAt is the time it was stored, by the ClickHouse server's clock (one
// clock for every writer, so that the latest label is the one stored last).
type Label struct {
	AppID      string    `json:"app_id"`
	DecisionID string    `json:"decision_id,omitempty"`
	EventID    string    `json:"event_id,omitempty"`
	Label      string    `json:"label"`
	Note       string    `json:"note,omitempty"`
	LabeledBy  string    `json:"labeled_by,omitempty"`
	LabeledAt  time.Time `json:"labeled_at,omitzero"`
}

// MaxNoteLen bounds a label's note.
const MaxNoteLen = 512

// What a label marks (Target), as the labels table's target column holds it.
const (
	LabelTargetDecision = "decision"
	LabelTargetEvent    = "event"
)

// Target is what the label marks: LabelTargetDecision or LabelTargetEvent, and its id.
func (l *Label) Target() (kind, id string) {
	if l.DecisionID != "" {
		return LabelTargetDecision, l.DecisionID
	}
	return LabelTargetEvent, l.EventID
}

// Validate checks a label as a caller sent it. Errors are *FieldError.
func (l *Label) Validate() error {
	if err := checkText("app_id", l.AppID, true, MaxAppIDLen); err != nil {
		return err
	}
	switch {
	case l.DecisionID == "" && l.EventID == "":
		return fieldErr("decision_id", "is required, or event_id: the label marks a decision or an event")
	case l.DecisionID != "" && l.EventID != "":
		return fieldErr("decision_id", "is set together with event_id: a label marks one of them")
	}
	if err := checkText("decision_id", l.DecisionID, false, MaxDecisionIDLen); err != nil {
		return err
	}
	if err := checkText("event_id", l.EventID, false, MaxEventIDLen); err != nil {
		return err
	}
	if l.Label != LabelFraud && l.Label != LabelLegit {
		return fieldErr("label", "%s is not fraud or legit", Excerpt(l.Label, 24))
	}
	return checkText("note", l.Note, false, MaxNoteLen)
}

// DecodeLabels decodes one label object or an array of them, strictly (unknown members are
// refused), and validates each. labeled_by and labeled_at are not accepted from callers. Errors
// are *FieldError, naming the element of an array: [3].label.
func DecodeLabels(data []byte) ([]Label, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &FieldError{Reason: "body is empty: expected a label object or an array of labels"}
	}
	// encoding/json would store a byte that is not UTF-8 as U+FFFD, and keep the last of two
	// app_ids: both are refused, naming the member.
	if err := CheckJSONText(data); err != nil {
		return nil, err
	}
	// encoding/json matches member names case-insensitively ("APP_ID" would fill app_id, and of
	// "app_id" and "APP_ID" the last would win): the names must be these, exactly. In an array,
	// each label's unknown member is its error (wrong below), named with the other wrong labels.
	array := trimmed[0] == '['
	unknown := exactLabelMembers(data, array)
	if !array && len(unknown) == 1 && unknown[0] != nil {
		return nil, unknown[0]
	}
	type wire struct {
		AppID      string `json:"app_id"`
		DecisionID string `json:"decision_id"`
		EventID    string `json:"event_id"`
		Label      string `json:"label"`
		Note       string `json:"note"`
	}
	var ws []wire
	// wrong holds an array element's error found while decoding it (an unknown member, a member of
	// the wrong type), reported with the labels that decode but are wrong: a body whose first
	// label had a number as its note and whose second a misspelt label answered only the first.
	var wrong []*FieldError
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var err error
	if array {
		// Element by element: encoding/json names a member of the wrong type without the index
		// of its element ("decision_id", not "[57].decision_id").
		var raws []json.RawMessage
		if err = dec.Decode(&raws); err == nil {
			ws, wrong = make([]wire, len(raws)), make([]*FieldError, len(raws))
			for i, raw := range raws {
				if i < len(unknown) && unknown[i] != nil {
					wrong[i] = unknown[i]
					continue
				}
				edec := json.NewDecoder(bytes.NewReader(raw))
				edec.DisallowUnknownFields()
				if err := edec.Decode(&ws[i]); err != nil {
					fe, _ := AsFieldError(jsonError(err))
					wrong[i] = &FieldError{Field: fmt.Sprintf("[%d]%s", i, dotted(fe.Field)), Reason: fe.Reason}
				}
			}
		}
	} else {
		ws = make([]wire, 1)
		err = dec.Decode(&ws[0])
	}
	if err != nil {
		return nil, NamedSyntaxError(data, err)
	}
	if !DecoderDone(dec) {
		return nil, &FieldError{Reason: "invalid JSON: data after the labels"}
	}
	if len(ws) == 0 {
		return nil, &FieldError{Reason: "the array holds no labels"}
	}
	out := make([]Label, len(ws))
	// Every wrong label of an array is named (the first maxWrongLabels): the first names the
	// error's field, the others follow in its reason, so that a batch is corrected in one go.
	var first *FieldError
	var more []string
	nWrong := 0
	for i, w := range ws {
		out[i] = Label{AppID: w.AppID, DecisionID: w.DecisionID, EventID: w.EventID, Label: w.Label, Note: w.Note}
		var fe *FieldError
		if i < len(wrong) && wrong[i] != nil {
			fe = wrong[i]
		} else if err := out[i].Validate(); err != nil {
			if !array {
				return nil, err
			}
			vfe, _ := AsFieldError(err)
			fe = &FieldError{Field: fmt.Sprintf("[%d]%s", i, dotted(vfe.Field)), Reason: vfe.Reason}
		}
		if fe == nil {
			continue
		}
		nWrong++
		switch {
		case first == nil:
			first = &FieldError{Field: fe.Field, Reason: fe.Reason}
		case nWrong <= maxWrongLabels:
			more = append(more, fe.Field+": "+fe.Reason)
		}
	}
	if first != nil {
		if len(more) > 0 {
			first.Reason += "; " + strings.Join(more, "; ")
		}
		if nWrong > maxWrongLabels {
			first.Reason += fmt.Sprintf("; and %d more wrong labels", nWrong-maxWrongLabels)
		}
		return nil, first
	}
	return out, nil
}

// maxWrongLabels is how many wrong labels of one array DecodeLabels names.
const maxWrongLabels = 20

// exactLabelMembers names, for each label of data (the one object, or each element of an array),
// its first member whose name is not exactly one of a label's (in an array, as [i].name); nil
// for a label without one. An element that is not an object has none here: the decoder reports
// it. Text that does not parse is left to the decoder to report (nil).
func exactLabelMembers(data []byte, array bool) []*FieldError {
	var raws []json.RawMessage
	if array {
		if json.Unmarshal(data, &raws) != nil {
			return nil
		}
	} else {
		raws = []json.RawMessage{data}
	}
	out := make([]*FieldError, len(raws))
	for i, raw := range raws {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(m)) {
			switch name {
			case "app_id", "decision_id", "event_id", "label", "note":
				continue
			}
			field := ShowName(name, 40)
			if array {
				field = fmt.Sprintf("[%d].%s", i, field)
			}
			out[i] = &FieldError{Field: field, Reason: "unknown field"}
			break
		}
	}
	return out
}

// DecodeLabelFile decodes a file of labels: what DecodeLabels takes (one object or an array), or
// JSON lines — one label object per line, as ClickHouse's FORMAT JSONEachRow writes the result of
// a query that selects the decisions to label. A UTF-8 byte order mark at the start is skipped.
// An error in a line names it: line 3: label: .... A file is read as JSON lines when its first
// line is a whole object and another line follows: one object written over several lines (as an
// editor or jq pretty-prints it) starts with a line of its own "{" and is read whole.
func DecodeLabelFile(data []byte) ([]Label, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(data)
	first, rest, more := bytes.Cut(trimmed, []byte("\n"))
	first = bytes.TrimSpace(first)
	if !more || len(first) < 2 || first[0] != '{' || first[len(first)-1] != '}' || len(bytes.TrimSpace(rest)) == 0 {
		return DecodeLabels(data)
	}
	var out []Label
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var ls []Label
		var err error
		if line[0] != '{' {
			err = &FieldError{Reason: "expected one label object per line (JSON lines), or one array of labels in the whole file"}
		} else {
			ls, err = DecodeLabels(line)
		}
		if err != nil {
			fe, ok := AsFieldError(err)
			if !ok {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			field := fmt.Sprintf("line %d", i+1)
			if fe.Field != "" {
				field += ": " + fe.Field
			}
			return nil, &FieldError{Field: field, Reason: fe.Reason}
		}
		out = append(out, ls...)
	}
	return out, nil
}
