package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

type fakeRules struct {
	cur    RulesInfo
	reject bool
	who    string
	opts   UpdateOptions
	err    error // every Update's answer, when set
}

func (f *fakeRules) Current() RulesInfo { return f.cur }

func (f *fakeRules) Update(_ context.Context, pack []byte, who string, opts UpdateOptions) (RulesInfo, error) {
	f.opts = opts
	if f.err != nil {
		return RulesInfo{}, f.err
	}
	if f.reject {
		return RulesInfo{}, fmt.Errorf("%w:\nline 4:11: rule r1: when: undeclared reference to 'nope'", ErrRejected)
	}
	f.who = who
	f.cur = RulesInfo{Pack: "p", Version: "v2", Rules: strings.Count(string(pack), "- id:"), Persisted: true}
	return f.cur, nil
}

func (f *fakeRules) Versions(context.Context) ([]RulesInfo, error) {
	return []RulesInfo{{Pack: "p", Version: "v2", LoadedBy: "api:lead@n1"}, {Pack: "p", Version: "v1", LoadedBy: "startup@n1"}}, nil
}

func (f *fakeRules) Rollback(_ context.Context, version, who, ifMatch string) (RulesInfo, error) {
	if ifMatch != "" && ifMatch != f.cur.Version {
		return RulesInfo{}, fmt.Errorf("%w: the live pack is version %s, not %s", ErrNotLive, f.cur.Version, ifMatch)
	}
	if version != "v1" && version != "v2" {
		return RulesInfo{}, fmt.Errorf("%w: unknown rule pack version %q", ErrNotFound, version)
	}
	f.who = who
	f.cur = RulesInfo{Pack: "p", Version: version, Source: "rollback", LoadedBy: "api:" + who}
	return f.cur, nil
}

func rulesReq(t *testing.T, h http.Handler, method, user, pass, body string) (int, map[string]any) {
	t.Helper()
	return rulesPathReq(t, h, method, "/v1/rules", user, pass, body)
}

func rulesPathReq(t *testing.T, h http.Handler, method, path, user, pass, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, rec.Body.String())
	}
	return rec.Code, m
}

func TestRulesAdminRoutes(t *testing.T) {
	fr := &fakeRules{cur: RulesInfo{Pack: "default", Version: "v1", Rules: 27}}
	keys := map[string]string{"app": "app-secret"}
	off := New(Config{Keys: keys}, nil, nil)
	if code, _ := rulesReq(t, off, http.MethodGet, "app", "app-secret", ""); code != http.StatusNotFound {
		t.Errorf("without admins GET /v1/rules = %d, want 404", code)
	}
	s := New(Config{Keys: keys}, nil, nil, WithRulesAdmin(fr, map[string]string{"risk-lead": "s3cret"}))

	if code, _ := rulesReq(t, s, http.MethodPut, "app", "app-secret", "pack: x"); code != http.StatusForbidden {
		t.Errorf("an app key may not change rules: got %d, want 403", code)
	}
	if code, _ := rulesReq(t, s, http.MethodPut, "risk-lead", "wrong", "pack: x"); code != http.StatusUnauthorized {
		t.Errorf("wrong admin secret: got %d, want 401", code)
	}
	code, m := rulesReq(t, s, http.MethodGet, "risk-lead", "s3cret", "")
	if code != http.StatusOK || m["version"] != "v1" || m["rules"] != float64(27) {
		t.Errorf("GET = %d %v", code, m)
	}
	code, m = rulesReq(t, s, http.MethodPut, "risk-lead", "s3cret", "pack: p\nrules:\n  - id: a\n  - id: b\n")
	if code != http.StatusOK || m["version"] != "v2" || m["rules"] != float64(2) || fr.who != "risk-lead" {
		t.Errorf("PUT = %d %v (who %q)", code, m, fr.who)
	}
	if fr.opts.SkipTests {
		t.Error("a plain PUT asked to skip the pack's tests")
	}
	// ?tests=skip reaches the service; another value is refused naming the parameter.
	if code, _ = rulesPathReq(t, s, http.MethodPut, "/v1/rules?tests=skip", "risk-lead", "s3cret", "pack: p\nrules:\n  - id: a\n"); code != http.StatusOK || !fr.opts.SkipTests {
		t.Errorf("PUT ?tests=skip = %d, skip %v", code, fr.opts.SkipTests)
	}
	code, m = rulesPathReq(t, s, http.MethodPut, "/v1/rules?tests=no", "risk-lead", "s3cret", "pack: p\nrules:\n  - id: a\n")
	// The value is shown once quoted (it was quoted twice: tests: "\"no\"").
	if content, _ := m["content"].(string); code != http.StatusBadRequest || content != `tests: "no" is not run or skip` {
		t.Errorf("PUT ?tests=no = %d %v; want 400 naming tests", code, m)
	}
	fr.reject = true
	code, m = rulesReq(t, s, http.MethodPut, "risk-lead", "s3cret", "pack: bad")
	if code != http.StatusBadRequest || !strings.Contains(m["content"].(string), "rule r1: when") {
		t.Errorf("rejected PUT = %d %v; want 400 naming the rule", code, m)
	}
	if code, _ := rulesReq(t, s, http.MethodDelete, "risk-lead", "s3cret", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", code)
	}
}

func TestRulesVersionsAndRollback(t *testing.T) {
	fr := &fakeRules{cur: RulesInfo{Pack: "p", Version: "v2"}}
	s := New(Config{Keys: map[string]string{"app": "app-secret"}}, nil, nil, WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	if code, _ := rulesPathReq(t, s, http.MethodGet, "/v1/rules/versions", "app", "app-secret", ""); code != http.StatusForbidden {
		t.Errorf("an app key lists versions: %d", code)
	}
	code, m := rulesPathReq(t, s, http.MethodGet, "/v1/rules/versions", "lead", "s3cret", "")
	vs, _ := m["versions"].([]any)
	if code != http.StatusOK || m["current"] != "v2" || len(vs) != 2 || vs[1].(map[string]any)["loaded_by"] != "startup@n1" {
		t.Errorf("GET /v1/rules/versions = %d %v", code, m)
	}
	for _, v := range vs {
		if _, has := v.(map[string]any)["code"]; has {
			t.Errorf("a version carries the answer's code: %v", v)
		}
		// persisted is the running pack's (this node writes its loads to a pack file): every
		// recorded version said "persisted": false, read as never kept anywhere.
		if _, has := v.(map[string]any)["persisted"]; has {
			t.Errorf("a recorded version carries persisted, which only the running pack has: %v", v)
		}
	}
	if code, _ := rulesPathReq(t, s, http.MethodPost, "/v1/rules/rollback", "app", "app-secret", `{"version":"v1"}`); code != http.StatusForbidden {
		t.Errorf("an app key rolls back: %d", code)
	}
	code, m = rulesPathReq(t, s, http.MethodPost, "/v1/rules/rollback", "lead", "s3cret", `{"version":"v1"}`)
	if code != http.StatusOK || m["version"] != "v1" || m["source"] != "rollback" || fr.who != "lead" {
		t.Errorf("rollback = %d %v (who %q)", code, m, fr.who)
	}
	if code, m = rulesPathReq(t, s, http.MethodPost, "/v1/rules/rollback", "lead", "s3cret", `{"version":"v9"}`); code != http.StatusNotFound || !strings.Contains(m["content"].(string), "v9") {
		t.Errorf("rollback to an unknown version = %d %v, want 404 naming it", code, m)
	}
	for _, body := range []string{"", "v1", `{"versoin":"v1"}`} {
		if code, _ := rulesPathReq(t, s, http.MethodPost, "/v1/rules/rollback", "lead", "s3cret", body); code != http.StatusBadRequest {
			t.Errorf("rollback body %q = %d, want 400", body, code)
		}
	}
	if code, _ := rulesPathReq(t, s, http.MethodGet, "/v1/rules/rollback", "lead", "s3cret", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/rules/rollback = %d, want 405", code)
	}
}

// putRejected PUTs a pack that admin rejects and returns the answer, which must be a 400 with a
// JSON error body.
func putRejected(t *testing.T, admin RulesAdmin) (*httptest.ResponseRecorder, schemas.ErrorBody) {
	t.Helper()
	s := New(Config{Keys: map[string]string{"app": "s"}}, nil, nil, WithRulesAdmin(admin, map[string]string{"lead": "s3cret"}))
	req := httptest.NewRequest(http.MethodPut, "/v1/rules", strings.NewReader("pack: p"))
	req.SetBasicAuth("lead", "s3cret")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var eb schemas.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || rec.Code != http.StatusBadRequest {
		t.Fatalf("%d %q: %v", rec.Code, rec.Body.String(), err)
	}
	return rec, eb
}

// A rejected pack's error lists every problem; the answer keeps the first ~1 KB of it.
func TestRejectedPackAnswerIsBounded(t *testing.T) {
	rec, eb := putRejected(t, &longRejection{})
	if rec.Body.Len() > maxErrorBody || !strings.HasPrefix(eb.Content, "rule pack rejected:\nline 1:") || !strings.HasSuffix(eb.Content, "… (cut)") {
		t.Errorf("answer of %d bytes: %.100q … %q", rec.Body.Len(), eb.Content, eb.Content[max(0, len(eb.Content)-40):])
	}
}

// A rejection whose text escapes to much more than itself in JSON — quotes and line breaks on
// every line, as the pack's failing tests are listed — keeps its first ~1 KB too: its answer was
// the marker alone, {"code":400,"content":"… (cut)"}, the excess having been cut from the text
// as if every byte were one in JSON.
func TestRejectedPackAnswerOfQuotedLinesKeepsItsStart(t *testing.T) {
	var b strings.Builder
	b.WriteString("rule pack rejected: 400 of the pack's 400 tests fail:")
	for i := range 400 {
		fmt.Fprintf(&b, "\n/etc/riskflow/tests.yaml:%d: test \"case %d\": score: got 0, want 300 (tags [])", 4*i+2, i)
	}
	rec, eb := putRejected(t, rejection{classified(ErrRejected, b.String())})
	first := "rule pack rejected: 400 of the pack's 400 tests fail:\n/etc/riskflow/tests.yaml:2: test \"case 0\": score: got 0, want 300 (tags [])\n"
	if rec.Body.Len() > maxErrorBody || !strings.HasPrefix(eb.Content, first) || !strings.HasSuffix(eb.Content, "… (cut)") {
		t.Errorf("answer of %d bytes: %q", rec.Body.Len(), eb.Content)
	}
	// As much as fits: one more byte of the text would not.
	if n := len(eb.Content) - len("… (cut)"); bodyLen(400, b.String()[:n+1]+"… (cut)") <= maxErrorBody {
		t.Errorf("answer of %d bytes keeps %d bytes of the text; %d would fit", rec.Body.Len(), n, n+1)
	}
}

// bodyLen is the length of an error answer with content, uncut.
func bodyLen(code int, content string) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(schemas.ErrorBody{Code: code, Content: content}); err != nil {
		panic(err)
	}
	return buf.Len()
}

// rejection answers every PUT with its error.
type rejection struct{ err error }

func (rejection) Current() RulesInfo                            { return RulesInfo{} }
func (rejection) Versions(context.Context) ([]RulesInfo, error) { return nil, nil }
func (r rejection) Update(context.Context, []byte, string, UpdateOptions) (RulesInfo, error) {
	return RulesInfo{}, r.err
}

func (rejection) Rollback(context.Context, string, string, string) (RulesInfo, error) {
	return RulesInfo{}, nil
}

// classified is text in class.
func classified(class error, text string) error { return classifiedErr{class, text} }

type classifiedErr struct {
	class error
	text  string
}

func (c classifiedErr) Error() string { return c.text }
func (c classifiedErr) Unwrap() error { return c.class }

type longRejection struct{}

func (longRejection) Current() RulesInfo { return RulesInfo{} }

func (longRejection) Versions(context.Context) ([]RulesInfo, error) { return nil, nil }

func (longRejection) Rollback(context.Context, string, string, string) (RulesInfo, error) {
	return RulesInfo{}, nil
}

func (longRejection) Update(context.Context, []byte, string, UpdateOptions) (RulesInfo, error) {
	var b strings.Builder
	for i := range 500 {
		fmt.Fprintf(&b, "\nline %d:3: rule r%d: when: undeclared reference to 'x<y>'", i+1, i)
	}
	return RulesInfo{}, fmt.Errorf("%w:%s", ErrRejected, b.String())
}

func TestEventsFromTheFutureAreRejected(t *testing.T) {
	s := New(Config{Keys: map[string]string{"app": "s"}}, nil, nopPublisher{})
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := `[{"event_id":"a","ts":"` + time.Now().UTC().Format(time.RFC3339) + `","app_id":"app","flow":"one_click_login","phone":"13800138000","ip":"1.2.3.4","outcome":"success"},` +
		`{"event_id":"b","ts":"` + future + `","app_id":"app","flow":"one_click_login","phone":"13800138000","ip":"1.2.3.4","outcome":"success"}]`
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	req.SetBasicAuth("app", "s")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `[1].ts: `) || !strings.Contains(rec.Body.String(), "in the future") {
		t.Errorf("future event: %d %s; want 400 naming [1].ts", rec.Code, rec.Body.String())
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []schemas.VerifyEvent) error { return nil }

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := Config{MaxBodyBytes: 10, RatePerApp: -1, EventsRatePerApp: -1, EventsPerApp: -1, AuthFailuresPerMinute: -1, Keys: map[string]string{"app": ""}}
	err := c.Validate()
	for _, want := range []string{"max_body_bytes: 10 is below 1024", "rate_per_app: must not", "events_rate_per_app: must not", "events_per_app: must not", "auth_failures_per_minute: must not", "keys: app key and secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

// PUT /v1/rules with If-Match loads the pack only while the version it names is live: one edited
// from a pack another admin has replaced since is refused with 412 naming both, nothing loaded.
func TestPutRulesIfMatch(t *testing.T) {
	fr := &fakeRules{cur: RulesInfo{Pack: "p", Version: "v2"}}
	s := New(Config{Keys: map[string]string{"app": "app-secret"}}, nil, nil, WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	put := func(ifMatch string) (int, string) {
		req := httptest.NewRequest(http.MethodPut, "/v1/rules", strings.NewReader("pack: p\nrules:\n  - id: a\n"))
		req.SetBasicAuth("lead", "s3cret")
		req.Header.Set("If-Match", ifMatch)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := put(`"v1"`); code != http.StatusPreconditionFailed || !strings.Contains(body, `live pack is version v2, not \"v1\"`) || fr.who != "" {
		t.Fatalf("If-Match of a replaced version: %d %s (loaded by %q)", code, body, fr.who)
	}
	if code, body := put(`"v2"`); code != http.StatusOK || fr.who != "lead" || fr.opts.IfMatch != "v2" {
		t.Fatalf("If-Match of the live version: %d %s (update asked to load over %q, want v2)", code, body, fr.opts.IfMatch)
	}
	// The version is checked again where the pack is swapped in, after its tests: a promotion
	// landing meanwhile is refused there, and answered 412 too.
	notLive := &fakeRules{cur: RulesInfo{Pack: "p", Version: "v2"}, err: fmt.Errorf("%w: the live pack is version v3, not v2", ErrNotLive)}
	s = New(Config{Keys: map[string]string{"app": "app-secret"}}, nil, nil, WithRulesAdmin(notLive, map[string]string{"lead": "s3cret"}))
	if code, body := put(`"v2"`); code != http.StatusPreconditionFailed || !strings.Contains(body, "the live pack is version v3, not v2") {
		t.Fatalf("a promotion landing during the tests: %d %s, want 412", code, body)
	}
}

// POST /v1/rules/rollback with If-Match rolls back only while the version it names is live, as a
// PUT loads: two admins rolling back at once from the same live version both undid it, the second
// the first's rollback, unseen (the console's rollback had it fixed; the API had no If-Match).
// Refused before the lookup with 412 naming both versions, and the version passed on, so that it
// is checked again where the pack is swapped in.
func TestRollbackIfMatch(t *testing.T) {
	fr := &fakeRules{cur: RulesInfo{Pack: "p", Version: "v2"}}
	s := New(Config{Keys: map[string]string{"app": "app-secret"}}, nil, nil, WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	rollback := func(ifMatch string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/rules/rollback", strings.NewReader(`{"version":"v1"}`))
		req.SetBasicAuth("lead", "s3cret")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := rollback(`"v3"`); code != http.StatusPreconditionFailed || !strings.Contains(body, `live pack is version v2, not \"v3\"`) ||
		!strings.Contains(body, "roll back again with If-Match") || fr.who != "" {
		t.Fatalf("If-Match of a version no longer live: %d %s (rolled back by %q)", code, body, fr.who)
	}
	if code, body := rollback(`"v2"`); code != http.StatusOK || fr.who != "lead" || fr.cur.Version != "v1" {
		t.Fatalf("If-Match of the live version: %d %s", code, body)
	}
	// Swapped in meanwhile (the fake checks the If-Match it is given against its live version).
	fr.cur.Version = "v2"
	s = New(Config{Keys: map[string]string{"app": "app-secret"}}, nil, nil, WithRulesAdmin(&swapMeanwhile{fr}, map[string]string{"lead": "s3cret"}))
	if code, body := rollback(`"v2"`); code != http.StatusPreconditionFailed || !strings.Contains(body, "the live pack is version v9, not v2") {
		t.Fatalf("a promotion landing between the check and the swap: %d %s, want 412", code, body)
	}
	// Without If-Match, as before: rolled back whatever is live.
	s = New(Config{Keys: map[string]string{"app": "app-secret"}}, nil, nil, WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	if code, body := rollback(""); code != http.StatusOK {
		t.Fatalf("without If-Match: %d %s", code, body)
	}
}

// swapMeanwhile is a rules admin whose live version changes to v9 between the handler's check of
// If-Match and the rollback's swap.
type swapMeanwhile struct{ *fakeRules }

func (f *swapMeanwhile) Rollback(ctx context.Context, version, who, ifMatch string) (RulesInfo, error) {
	f.cur.Version = "v9"
	return f.fakeRules.Rollback(ctx, version, who, ifMatch)
}

// An app key is the app_id its requests must carry: a name no app_id can be (too long, a phone
// number in it, blank) would authenticate and then have every check and event refused, so it is
// a configuration error, named without echoing a number.
func TestConfigValidateAppKeysAreAppIDs(t *testing.T) {
	c := Config{Keys: map[string]string{strings.Repeat("a", 65): "s", "app-13812345678": "s", "\u200b": "s", "fine": "s"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"keys: app key \"aaaaaaaaaa", "is 65 bytes long, the limit is 64", "looks like it contains a mobile phone number", "is blank"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "13812345678") || strings.Contains(err.Error(), "fine") {
		t.Errorf("%v", err)
	}
}

// HTTP Basic cannot carry a colon in its user name (RFC 7617): "shop:cn:secret" is user "shop",
// secret "cn:secret". An app key holding one started and was listed among the node's apps, and
// every request of the app was refused as a wrong secret (spending its address's failure budget),
// so it is a configuration error naming the key.
func TestConfigValidateAppKeysHoldNoColon(t *testing.T) {
	c := Config{Keys: map[string]string{"shop:cn": "s3cret", "fine": "s"}, PreviousKeys: map[string]string{"shop:cn": "old"}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `keys: app key "shop:cn" holds ':'`) {
		t.Fatalf("Validate() = %v, want the app key with a colon named", err)
	}
	if strings.Contains(err.Error(), "fine") {
		t.Errorf("%v names a good key", err)
	}
	s := New(Config{Keys: map[string]string{"shop:cn": "s3cret"}}, nil, nil) // refused before a checker is asked
	req := httptest.NewRequest(http.MethodPost, "/v1/risk/check", strings.NewReader(`{"phone":"13800138000","ip":"1.2.3.4","app_id":"shop:cn"}`))
	req.SetBasicAuth("shop:cn", "s3cret")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a key with a colon authenticated (%d): Validate need not refuse it", rec.Code)
	}
}

// A secret no client sends — blank, or with the trailing newline a YAML block scalar ("app1: |")
// keeps — is refused at start naming the app or admin, not the secret: the node had started and
// answered every request of the app 401.
func TestConfigValidateSecretsClientsCanSend(t *testing.T) {
	c := Config{
		Keys:         map[string]string{"blank": "   ", "nl": "s3cret-nl\n", "tab": "s3\tcret", "lead": " s3cret-lead", "fine": "s3cret"},
		PreviousKeys: map[string]string{"fine": "old-s3cret\n"},
	}
	err := c.Validate()
	for _, want := range []string{
		`keys: the secret of "blank" is blank`,
		`keys: the secret of "nl" begins or ends with a space or a newline`,
		`keys: the secret of "lead" begins or ends`,
		`keys: the secret of "tab" holds a control character`,
		`previous_keys: the secret of "fine" begins or ends`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3") {
		t.Errorf("Validate() shows a secret: %v", err)
	}
	if err := (Config{Keys: map[string]string{"app": "a long secret with spaces inside"}}).Validate(); err != nil {
		t.Errorf("a secret with inner spaces: %v", err)
	}
}
