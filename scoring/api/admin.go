package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// DecisionLog records served verdicts (the decision log: risk.decisions → risk_decisions). Record
// is called on the check's path once the answer is written: it must not block and cannot fail the
// check. It may keep what it is given (the strings, tags, detail and hits are not reused). The
// values come by value so that a check without a decision log allocates nothing more.
type DecisionLog interface {
	Record(req schemas.CheckRequest, rc schemas.RiskCheck, hits []schemas.RuleHit, latency time.Duration)
}

// HitsChecker is a Checker that also returns every rule hit (shadow, tag and allow rules
// included); with a DecisionLog the API uses it so that the log keeps every hit.
type HitsChecker interface {
	CheckHits(req *schemas.CheckRequest) (schemas.RiskCheck, []schemas.RuleHit, error)
}

// WithDecisionLog records every verdict /v1/risk/check serves in l.
func WithDecisionLog(l DecisionLog) Option { return func(s *Server) { s.decisions = l } }

// Explainer explains the live state of one phone, IP or device (scoring.Scorer).
type Explainer interface {
	Explain(sub scoring.Subject) (scoring.Explanation, error)
}

// Labeler stores labels (ClickHouse labels). Labels arrive validated, with who and when set.
type Labeler interface {
	Label(ctx context.Context, labels []schemas.Label) error
}

// labelChecker is a Labeler that also tells which labels' decisions or events it does not hold:
// the answer lists them, since a label of a mistyped id never counts.
type labelChecker interface {
	UnknownTargets(ctx context.Context, labels []schemas.Label) ([]schemas.Label, error)
}

// WithInvestigation serves POST /v1/admin/explain (with x) and POST /v1/admin/labels (with l) for
// the admins of WithRulesAdmin (api.admin_keys); either may be nil (that route answers 404).
func WithInvestigation(x Explainer, l Labeler) Option {
	return func(s *Server) { s.explainer, s.labeler = x, l }
}

// WithStateHealth tells explanations whether the state they explain is current: f returns why not
// (the broker away, so that the feature replica has read nothing for a while; far behind) or nil.
// The explanation is given all the same — it is the state checks are answered from meanwhile —
// with the reason in its `stale` member: without it, an investigator during a Kafka outage read a
// state minutes old as the number's "live state", its latest attempts missing from every window.
func WithStateHealth(f func() error) Option { return func(s *Server) { s.stateHealth = f } }

// WithAdmins sets the admin credentials (name → secret) of the admin routes without a rules admin.
func WithAdmins(admins map[string]string) Option { return func(s *Server) { s.admins = admins } }

// admin authenticates an admin for a route that is on when on is true; needs says what else
// than admin keys the route needs, for the 404 of a node with admin keys where it is off.
func (s *Server) admin(r *http.Request, on bool, what, needs string) (string, error) {
	switch {
	case len(s.admins) == 0:
		return "", &httpError{status: http.StatusNotFound, msg: what + " is not enabled on this node (api.admin_keys)"}
	case !on:
		return "", &httpError{status: http.StatusNotFound, msg: what + " is not enabled on this node: it needs " + needs}
	}
	return s.authenticate(r, s.admins, nil, "admin", "admin", false)
}

// ExplainRequest is the body of POST /v1/admin/explain: exactly one of phone, ip and device_id;
// app_id adds the app's windows.
type ExplainRequest struct {
	Phone    string `json:"phone"`
	IP       string `json:"ip"`
	DeviceID string `json:"device_id"`
	AppID    string `json:"app_id"`
}

// ExplainResponse is the answer of POST /v1/admin/explain.
type ExplainResponse struct {
	Code    int    `json:"code"`
	Content string `json:"content"`
	// Stale says why the state explained is not current (WithStateHealth); empty when it is.
	Stale string `json:"stale,omitempty"`
	scoring.Explanation
}

// decodeStrict decodes a JSON object into v, refusing unknown members, members given twice and
// text that is not valid Unicode.
func decodeStrict(b []byte, v any) error {
	// Text that is not valid Unicode and a member given twice, which encoding/json passes silently.
	if err := schemas.CheckJSONText(b); err != nil {
		return err
	}
	// What is not an object is named as such (encoding/json would name the Go type it decodes
	// into, or take null for an empty object).
	switch trimmed := bytes.TrimLeft(b, " \t\r\n"); {
	case len(trimmed) == 0:
		return &schemas.FieldError{Reason: "body is empty: expected a JSON object"}
	case trimmed[0] == '[':
		return &schemas.FieldError{Reason: "expected a JSON object, got an array"}
	case trimmed[0] == '"':
		return &schemas.FieldError{Reason: "expected a JSON object, got a string"}
	case bytes.HasPrefix(trimmed, []byte("null")):
		return &schemas.FieldError{Reason: "expected a JSON object, got null"}
	case trimmed[0] == '-' || trimmed[0] >= '0' && trimmed[0] <= '9':
		return &schemas.FieldError{Reason: "expected a JSON object, got a number"}
	case bytes.HasPrefix(trimmed, []byte("true")) || bytes.HasPrefix(trimmed, []byte("false")):
		return &schemas.FieldError{Reason: "expected a JSON object, got a boolean"}
	}
	// encoding/json matches member names case-insensitively ("IP" fills ip, and of "ip" and "IP"
	// the last wins): the names must be the document's, exactly.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err == nil {
		known := jsonNames(v)
		for _, name := range slices.Sorted(maps.Keys(members)) {
			if !known[name] {
				return &schemas.FieldError{Field: schemas.ShowName(name, 40), Reason: "unknown field"}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var fe *schemas.FieldError
		if errors.As(err, &fe) {
			return fe
		}
		// encoding/json names an unknown member only in its text: `json: unknown field "x"`.
		if q, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if name, err := strconv.Unquote(q); err == nil {
				return &schemas.FieldError{Field: schemas.ShowName(name, 40), Reason: "unknown field"}
			}
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// Worded as the check's and the event's decoders word it: "must be a string, got number".
			return &schemas.FieldError{Field: schemas.ShowName(te.Field, 40), Reason: "must be " + schemas.JSONKind(te.Type) + ", got " + te.Value}
		}
		// Named by the member the text stops being JSON in, as an event's and a label's are
		// ("device_id: invalid JSON at byte 29: …"), the phone's quoting nothing of its value.
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return schemas.NamedSyntaxError(b, err)
		}
		return &schemas.FieldError{Reason: "invalid JSON: " + schemas.Excerpt(err.Error(), 200)}
	}
	if !schemas.DecoderDone(dec) {
		return &schemas.FieldError{Reason: "invalid JSON: data after the object"}
	}
	return nil
}

func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) (int, error) {
	who, err := s.admin(r, s.explainer != nil, "investigation", "the scorer (the api role)")
	if err != nil {
		return 0, err
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	if err := checkJSON(r); err != nil {
		return 0, err
	}
	b, release, err := s.body(w, r)
	defer release()
	if err != nil {
		return 0, err
	}
	var req ExplainRequest
	if err := decodeStrict(b, &req); err != nil {
		return 0, err
	}
	var sub scoring.Subject
	if req.Phone != "" {
		// Typed or pasted by a person (+86, spaces, dashes, full-width digits), as lookup --phone.
		if sub.Phone, err = schemas.ReadWrittenPhone(req.Phone); err != nil {
			return 0, err
		}
	}
	if req.IP != "" {
		if sub.IP, err = schemas.ParseIP(req.IP); err != nil {
			return 0, err
		}
	}
	// The ids are checked as an event's: a device id or app id holding a phone number would put
	// it in plaintext into the answer's subject and this node's log.
	if err := schemas.CheckDeviceID("device_id", req.DeviceID, schemas.MaxDeviceIDLen); err != nil {
		return 0, err
	}
	if err := schemas.CheckID("app_id", req.AppID, schemas.MaxAppIDLen); err != nil {
		return 0, err
	}
	sub.DeviceID, sub.AppID = req.DeviceID, req.AppID
	// Exactly one subject, named in the answer (before readiness: a wrong request is a 400 on a
	// node catching up too).
	var given []string
	for _, m := range []struct {
		name string
		set  bool
	}{{"phone", req.Phone != ""}, {"ip", req.IP != ""}, {"device_id", req.DeviceID != ""}} {
		if m.set {
			given = append(given, m.name)
		}
	}
	switch len(given) {
	case 0:
		return 0, &schemas.FieldError{Reason: "give one of phone, ip and device_id (app_id alone is no subject)"}
	case 1:
	default:
		return 0, &schemas.FieldError{Field: given[1], Reason: "give exactly one of phone, ip and device_id: " + given[0] + " is given too"}
	}
	// A state still replaying Kafka would be explained as windows not filled yet: wait for what
	// checks wait for.
	if err := s.serving(); err != nil {
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	}
	x, err := s.explainer.Explain(sub)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	}
	resp := ExplainResponse{Code: 0, Content: "live state", Explanation: x}
	if s.stateHealth != nil {
		if err := s.stateHealth(); err != nil {
			resp.Stale = schemas.MaskPhones(err.Error()) // as /readyz says it
			resp.Content = "live state, not current: " + resp.Stale
		}
	}
	s.log.Info("state explained", "by", who, "subject", schemas.MaskPhones(x.Subject), "stale", resp.Stale != "") // a device id may hold digits that read as a number
	writeJSON(w, http.StatusOK, resp)
	return http.StatusOK, nil
}

// LabelsResponse is the answer of POST /v1/admin/labels.
type LabelsResponse struct {
	Code    int    `json:"code"`
	Content string `json:"content"`
	Labeled int    `json:"labeled"`
	// Unknown are the labelled decisions and events not stored (yet): a mistyped id or app never
	// counts; one just made may not be archived yet. The labels are stored all the same.
	Unknown []LabelTarget `json:"unknown,omitempty"`
	// Unchecked: whether the labelled ids are stored could not be checked (ClickHouse failed the
	// query after storing the labels); Unknown is then empty whatever the ids.
	Unchecked bool `json:"unchecked,omitempty"`
}

// LabelTarget names what a label marks.
type LabelTarget struct {
	AppID      string `json:"app_id"`
	DecisionID string `json:"decision_id,omitempty"`
	EventID    string `json:"event_id,omitempty"`
}

func (s *Server) handleLabels(w http.ResponseWriter, r *http.Request) (int, error) {
	who, err := s.admin(r, s.labeler != nil, "labelling", "ClickHouse (clickhouse.addr), which this node has not configured (or could not open: see its log)")
	if err != nil {
		return 0, err
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	if err := checkJSON(r); err != nil {
		return 0, err
	}
	b, release, err := s.body(w, r)
	defer release()
	if err != nil {
		return 0, err
	}
	labels, err := schemas.DecodeLabels(b)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	for i := range labels {
		labels[i].LabeledBy, labels[i].LabeledAt = "api:"+who, now
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.labeler.Label(ctx, labels); err != nil {
		// ClickHouse away or slow: say when to send the labels again (storing them twice is
		// harmless: the latest label of a decision or event is the one read).
		return 0, &httpError{status: http.StatusServiceUnavailable, msg: "store labels: " + err.Error(), retryAfter: labelsRetryAfter, cause: err}
	}
	s.log.Info("labels stored", "by", who, "labels", len(labels))
	resp := LabelsResponse{Code: 0, Content: "labels stored", Labeled: len(labels)}
	if len(labels) == 1 {
		resp.Content = "label stored"
	}
	if lc, ok := s.labeler.(labelChecker); ok {
		unknown, err := lc.UnknownTargets(ctx, labels)
		if err != nil {
			// Said in the answer too: an empty unknown list must not read as every id found.
			s.log.Warn("labels stored; could not check that their ids are stored", "err", boundedErr(err))
			resp.Unchecked = true
			resp.Content = "labels stored; could not check that their decisions and events are stored: " + schemas.MaskPhones(boundedErr(err))
			if len(labels) == 1 {
				resp.Content = "label stored; could not check that its decision or event is stored: " + schemas.MaskPhones(boundedErr(err))
			}
		}
		for _, l := range unknown {
			resp.Unknown = append(resp.Unknown, LabelTarget{AppID: l.AppID, DecisionID: l.DecisionID, EventID: l.EventID})
		}
		switch {
		case len(labels) == 1 && len(unknown) == 1:
			resp.Content = "label stored; it marks a decision or event not stored (yet): see unknown"
		case len(unknown) == 1:
			resp.Content = "labels stored; 1 of them marks a decision or event not stored (yet): see unknown"
		case len(unknown) > 1:
			resp.Content = fmt.Sprintf("labels stored; %d of them mark a decision or event not stored (yet): see unknown", len(unknown))
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return http.StatusOK, nil
}

// labelsRetryAfter is the Retry-After of a 503 on /v1/admin/labels when ClickHouse did not store them.
const labelsRetryAfter = 5 * time.Second

// jsonNames returns the JSON member names of the struct v points to (its fields' json tags).
func jsonNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return names
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "":
			names[f.Name] = true
		default:
			names[name] = true
		}
	}
	return names
}
