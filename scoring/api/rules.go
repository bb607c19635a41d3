package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// RulesInfo describes a rule pack: what GET /v1/rules and PUT /v1/rules answer.
type RulesInfo struct {
	Code     int    `json:"code"`
	Content  string `json:"content"`
	Pack     string `json:"pack"`
	Version  string `json:"version"`
	Rules    int    `json:"rules"`
	LoadedBy string `json:"loaded_by,omitempty"`
	LoadedAt string `json:"loaded_at,omitempty"`
	Source   string `json:"source,omitempty"` // the pack file, "api", "rollback" or "embedded default"
	// Persisted is false when the pack only lives in this process (no rule file configured).
	Persisted bool `json:"persisted"`
	// Recorded is false when rule_versions could not be written (ClickHouse down or off).
	Recorded bool `json:"recorded"`
	// FileProblem (GET only) says why the pack file is not what runs here — it cannot be read, or
	// holds a pack that does not compile — since when; empty while the file runs.
	FileProblem string `json:"file_problem,omitempty"`
}

// RulesAdmin is how risk teams ship a pack through the API. Update validates and compiles the pack
// and only then swaps it in; a rejected pack (the error names every problem with rule id and
// position) leaves the running one untouched. Versions lists the recorded versions, newest first;
// Rollback loads one of them again.
type RulesAdmin interface {
	Current() RulesInfo
	Update(ctx context.Context, pack []byte, who string, opts UpdateOptions) (RulesInfo, error)
	Versions(ctx context.Context) ([]RulesInfo, error)
	// Rollback loads a recorded version again. ifMatch, when not "", is the version the caller
	// means to undo (If-Match): refused (ErrNotLive) unless it is live when the pack is swapped in.
	Rollback(ctx context.Context, version, who, ifMatch string) (RulesInfo, error)
}

// UpdateOptions are what a PUT /v1/rules asks besides its pack.
type UpdateOptions struct {
	// SkipTests (?tests=skip) loads a pack although it fails the pack's tests (tests.yaml beside
	// the pack file, which a node runs before a promotion): a change meant to change what the
	// tests pin, from an admin who cannot update the node's tests.yaml first. It is recorded as
	// such (source "api, tests skipped").
	SkipTests bool
	// IfMatch is the version the pack was edited from (If-Match): the update is refused
	// (ErrNotLive, 412) unless that version is still live when the pack is loaded — after its
	// tests, which take seconds for a large suite, during which another promotion may land.
	IfMatch string
}

// ErrRejected wraps a pack that did not compile (answered 400).
var ErrRejected = errors.New("rule pack rejected")

// ErrNotFound wraps an unknown version, or no version history on this node (answered 404).
var ErrNotFound = errors.New("not found")

// ErrConflict wraps a pack refused because another promotion changed the shared pack file since
// this node last read it (answered 409).
var ErrConflict = errors.New("rule pack changed meanwhile")

// ErrNotLive wraps a pack refused because the live pack is no longer the version If-Match named
// (answered 412).
var ErrNotLive = errors.New("live rule pack changed")

// WithRulesAdmin serves GET and PUT /v1/rules for the given admin credentials (name → secret).
// Without admins the routes answer 404: rules then change only through the pack file.
func WithRulesAdmin(r RulesAdmin, admins map[string]string) Option {
	return func(s *Server) { s.rules, s.admins = r, admins }
}

// WithRulesApproval makes PUT /v1/rules and POST /v1/rules/rollback answer 403 (nothing loaded)
// when approvals is 2 or more: a new pack, or a recorded one brought back, then takes a second
// admin (api.console_approvals), which the console's promotion and rollback requests provide and
// one admin's call cannot. Reading the pack and its versions stays open.
func WithRulesApproval(approvals int) Option {
	return func(s *Server) { s.needApproval = approvals >= 2 }
}

// adminAuth checks admin Basic credentials in constant time.
func (s *Server) adminAuth(r *http.Request) (string, error) {
	if s.rules == nil || len(s.admins) == 0 {
		return "", &httpError{status: http.StatusNotFound, msg: "rule administration is not enabled on this node (api.admin_keys)"}
	}
	return s.authenticate(r, s.admins, nil, "admin", "admin", false)
}

func (s *Server) handleGetRules(w http.ResponseWriter, r *http.Request) (int, error) {
	if _, err := s.adminAuth(r); err != nil {
		return 0, err
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	info := s.rules.Current()
	info.Code, info.Content = 0, "current rule pack"
	writeJSON(w, http.StatusOK, info)
	return http.StatusOK, nil
}

// handlePutRules takes the pack as the body, as YAML (checkYAML lists the Content-Types). A
// rejected pack's error names every problem; the answer shows the first ~1 KB of it, as every
// error answer (riskflow rules lint prints all).
func (s *Server) handlePutRules(w http.ResponseWriter, r *http.Request) (int, error) {
	who, err := s.adminAuth(r)
	if err != nil {
		return 0, err
	}
	if s.needApproval {
		return 0, &httpError{status: http.StatusForbidden, msg: "rules: api.console_approvals is 2, so a new pack takes a second admin: request its promotion in the console (/console/rules/draft), where another admin approves it"}
	}
	// The query before the body: a mistyped parameter is answered without reading a pack.
	var opts UpdateOptions
	q, err := Query(r, "tests")
	if err != nil {
		return 0, err
	}
	if len(q["tests"]) > 1 {
		return 0, &schemas.FieldError{Field: "tests", Reason: "is given more than once: give run or skip once"}
	}
	switch v := q.Get("tests"); v {
	case "", "run":
	case "skip":
		opts.SkipTests = true
	default:
		return 0, &schemas.FieldError{Field: "tests", Reason: schemas.Excerpt(v, 40) + " is not run or skip"}
	}
	if err := checkYAML(r); err != nil {
		return 0, err
	}
	b, release, err := s.body(w, r)
	defer release()
	if err != nil {
		return 0, err
	}
	// If-Match: "VERSION" — the pack the caller edited: refused when another promotion came first,
	// instead of replacing that one unseen. Checked again where the pack is swapped in: the tests
	// run in between.
	if opts.IfMatch, err = s.ifMatch(r, "send the pack again"); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	info, err := s.rules.Update(ctx, b, who, opts)
	if err != nil {
		return 0, rulesError("update rules", err)
	}
	info.Code, info.Content = 0, "rule pack loaded"
	if opts.SkipTests {
		s.log.Warn("rule pack loaded through the API without its tests (tests=skip)", "pack", info.Pack, "version", info.Version, "by", who)
	} else {
		s.log.Info("rule pack loaded through the API", "pack", info.Pack, "version", info.Version, "by", who)
	}
	writeJSON(w, http.StatusOK, info)
	return http.StatusOK, nil
}

// RulesVersions is what GET /v1/rules/versions answers.
type RulesVersions struct {
	Code     int           `json:"code"`
	Content  string        `json:"content"`
	Current  string        `json:"current"`
	Versions []RuleVersion `json:"versions"`
}

// RuleVersion is one recorded version in RulesVersions: a RulesInfo without the answer's code and
// content, which belong to the envelope, nor persisted, which is the running pack's (whether this
// node writes its loads to a pack file) and which rule_versions does not record: every version
// said "persisted": false.
type RuleVersion struct {
	Pack     string `json:"pack"`
	Version  string `json:"version"`
	Rules    int    `json:"rules"`
	LoadedBy string `json:"loaded_by,omitempty"`
	LoadedAt string `json:"loaded_at,omitempty"`
	Source   string `json:"source,omitempty"`
	Recorded bool   `json:"recorded"`
}

func (s *Server) handleRulesVersions(w http.ResponseWriter, r *http.Request) (int, error) {
	if _, err := s.adminAuth(r); err != nil {
		return 0, err
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	list, err := s.rules.Versions(ctx)
	if err != nil {
		return 0, rulesError("list rule versions", err)
	}
	out := RulesVersions{Content: "recorded rule pack versions, newest first", Current: s.rules.Current().Version, Versions: make([]RuleVersion, len(list))}
	for i, v := range list {
		out.Versions[i] = RuleVersion{Pack: v.Pack, Version: v.Version, Rules: v.Rules, LoadedBy: v.LoadedBy, LoadedAt: v.LoadedAt,
			Source: v.Source, Recorded: v.Recorded}
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK, nil
}

// ifMatch reads If-Match: "VERSION" (quoted or not, W/ ignored; absent or * for none) and refuses
// with 412 a version that is not the live one now; again says what the caller does next.
func (s *Server) ifMatch(r *http.Request, again string) (string, error) {
	m := strings.TrimSpace(r.Header.Get("If-Match"))
	if m == "" || m == "*" {
		return "", nil
	}
	want := strings.Trim(strings.TrimPrefix(m, "W/"), `"`)
	if cur := s.rules.Current().Version; want != cur {
		return "", &httpError{status: http.StatusPreconditionFailed, msg: fmt.Sprintf("If-Match: the live pack is version %s, not %s: another promotion came first; "+
			"see GET /v1/rules/versions, and %s with If-Match: \"%s\" if it is to replace that one", cur, schemas.Excerpt(want, 40), again, cur)}
	}
	return want, nil
}

// rollbackRequest is the body of POST /v1/rules/rollback.
type rollbackRequest struct {
	Version string `json:"version"`
}

func (s *Server) handleRulesRollback(w http.ResponseWriter, r *http.Request) (int, error) {
	who, err := s.adminAuth(r)
	if err != nil {
		return 0, err
	}
	if s.needApproval {
		// A rollback loads a pack as a promotion does — any recorded version, one with every rule in
		// shadow too — and the console makes it a request another admin approves.
		return 0, &httpError{status: http.StatusForbidden, msg: "rules: api.console_approvals is 2, so a rollback takes a second admin: request it in the console (the rules page's Roll back), where another admin approves it; an operator of the nodes rolls back with riskflow rules rollback VERSION, which writes the pack file"}
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	// Any Content-Type is read as JSON (curl -d sends a form's, as the README's example does), but
	// a compressed body is refused as on every other route, not read as JSON.
	if err := checkEncoding(r); err != nil {
		return 0, err
	}
	b, release, err := s.body(w, r)
	defer release()
	if err != nil {
		return 0, err
	}
	var req rollbackRequest
	if err := decodeStrict(b, &req); err != nil {
		return 0, err
	}
	if req.Version == "" {
		return 0, &schemas.FieldError{Field: "version", Reason: `is required: {"version": "<a version from GET /v1/rules/versions>"}`}
	}
	// If-Match: "VERSION" — the live version the rollback means to undo: refused when another
	// promotion or rollback came first, as a PUT is (two admins rolling back at once both undid
	// the same version, one of them the other's rollback, unseen).
	ifMatch, err := s.ifMatch(r, "roll back again")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	info, err := s.rules.Rollback(ctx, req.Version, who, ifMatch)
	if err != nil {
		return 0, rulesError("roll back rules", err)
	}
	info.Code, info.Content = 0, "rule pack rolled back"
	s.log.Info("rule pack rolled back through the API", "pack", info.Pack, "version", info.Version, "by", who)
	writeJSON(w, http.StatusOK, info)
	return http.StatusOK, nil
}

// rulesError answers the administration's errors: a rejected pack 400, an unknown version 404, a
// promotion over one this node has not seen 409, anything else 503 — the history (ClickHouse) or the pack file could not be reached or written,
// which a later call may find working (it was a 500 "internal error" saying nothing).
func rulesError(what string, err error) error {
	switch {
	case errors.Is(err, ErrRejected):
		return &httpError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, ErrNotFound):
		return &httpError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, ErrConflict):
		return &httpError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, ErrNotLive):
		return &httpError{status: http.StatusPreconditionFailed, msg: err.Error()}
	}
	return &httpError{status: http.StatusServiceUnavailable, msg: what + ": " + err.Error(), cause: err}
}
