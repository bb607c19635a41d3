package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/backtest"
	"github.com/riskflow/riskflow/scoring/console"
	"github.com/riskflow/riskflow/scoring/console/consoletest"
)

// fakes: in-memory parts that record what the console asked for.

type fakeRules struct {
	mu       sync.Mutex
	live     console.PackInfo
	promoted []string // who promoted, in order
}

func (f *fakeRules) Live(context.Context) (console.PackInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live, nil
}
func (f *fakeRules) Versions(context.Context) ([]console.Version, error) {
	return []console.Version{{Version: "00000000000000a2", Content: "pack: p\nrules: [b]\n"}, {Version: "00000000000000a1", Content: "pack: p\nrules: [a]\n"}}, nil
}
func (f *fakeRules) Version(ctx context.Context, v string) (console.Version, error) {
	vs, _ := f.Versions(ctx)
	for _, x := range vs {
		if x.Version == v {
			return x, nil
		}
	}
	return console.Version{}, console.ErrInvalid
}
func (f *fakeRules) Lint(draft []byte) []console.LintError {
	if strings.Contains(string(draft), "bad") {
		return []console.LintError{{Line: 2, Column: 3, Rule: "r1", Field: "when", Msg: "undeclared reference to 'bad'"}}
	}
	return nil
}

// Test fails t2 for a draft holding "fails".
func (f *fakeRules) Test(_ context.Context, draft []byte) ([]console.TestResult, error) {
	if strings.Contains(string(draft), "fails") {
		return []console.TestResult{{Name: "t1", Line: 1}, {Name: "t2", Line: 5, Failures: []string{"score 0, want 300"}}}, nil
	}
	return []console.TestResult{{Name: "t1", Line: 1}, {Name: "t2", Line: 5}}, nil
}
func (f *fakeRules) Promote(_ context.Context, draft []byte, who, _ string) (console.PackInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.promoted = append(f.promoted, who)
	f.live = console.PackInfo{Name: "p", Version: "00000000000000b1", Rules: 1, Content: draft}
	return f.live, nil
}
func (f *fakeRules) Rollback(_ context.Context, v, who, _ string) (console.PackInfo, error) {
	return console.PackInfo{Version: v}, nil
}

type fakeLists struct {
	mu      sync.Mutex
	entries []console.ListEntry
}

func (f *fakeLists) Entries(context.Context) ([]console.ListEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]console.ListEntry(nil), f.entries...), nil
}
func (f *fakeLists) Add(_ context.Context, e console.ListEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.ID = fmt.Sprint(len(f.entries) + 1)
	f.entries = append(f.entries, e)
	return nil
}
func (f *fakeLists) Remove(context.Context, string, string) error { return nil }
func (f *fakeLists) HashPhone(p string) string                    { return "hash-of-" + p[len(p)-4:] }

// blockingBacktest reports progress, then waits for cancellation.
type blockingBacktest struct{ started chan struct{} }

func (b *blockingBacktest) Backtest(ctx context.Context, draft []byte, from, to time.Time, progress func(backtest.Progress)) (*backtest.Report, error) {
	progress(backtest.Progress{Read: 1000, Compared: 900, Changed: 7, At: from.Add(to.Sub(from) / 4)})
	close(b.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

// client is an admin's browser on a test server.
type client = consoletest.Browser

func newServer(t *testing.T, d console.Deps) *client {
	t.Helper()
	d.Admins = map[string]string{"alice": "a-secret", "bob": "b-secret"}
	s, err := console.New(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	// TLS: the session cookie is Secure, so a client keeps it only over https (as browsers do
	// for every host but localhost).
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	return consoletest.New(t, ts.URL, ts.Client())
}

// An app key's right credentials at the login are answered that the console takes an admin's
// (403), as the admin routes answer them, where they read "unknown admin or wrong secret" — a
// mistyped secret — and were failed logins: five of them from a verify service's host locked out
// every name that is no admin's there for a minute (429). A wrong secret stays a failure.
func TestAppKeyLoginIsForbidden(t *testing.T) {
	c := newServer(t, console.Deps{AppKey: func(name, secret string) bool { return name == "app1" && secret == "secret1" }})
	for range 6 {
		code, body, _ := c.Post("/console/login", url.Values{"name": {"app1"}, "secret": {"secret1"}})
		if code != http.StatusForbidden || !strings.Contains(body, `id="err-secret">this is an app key (api.keys)`) || !strings.Contains(body, "api.admin_keys") {
			t.Fatalf("an app key's login: %d\n%s", code, body)
		}
	}
	for range 5 {
		if code, _, _ := c.Post("/console/login", url.Values{"name": {"app1"}, "secret": {"guess"}}); code != http.StatusUnauthorized {
			t.Errorf("an app key with a wrong secret: %d, want 401", code)
		}
	}
	if code, _, _ := c.Post("/console/login", url.Values{"name": {"app1"}, "secret": {"secret1"}}); code != http.StatusTooManyRequests {
		t.Errorf("after 5 wrong secrets: %d, want 429", code)
	}
	c.Login("alice", "a-secret")
}

func TestLoginSessionAndCSRF(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	// Every page asks for a login first, and comes back to the page after it.
	code, _, h := c.Get("/console/rules")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login?next=") {
		t.Fatalf("unauthenticated /console/rules: %d %s", code, h.Get("Location"))
	}
	// Wrong secret and unknown admin get the same message, next to the field.
	for _, who := range []string{"alice", "mallory"} {
		code, body, _ := c.Post("/console/login", url.Values{"name": {who}, "secret": {"guess"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, `id="err-secret">unknown admin or wrong secret`) {
			t.Errorf("%s with a wrong secret: %d", who, code)
		}
	}
	code, body, _ := c.Post("/console/login", url.Values{"name": {""}, "secret": {""}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="err-name">name: required`) || !strings.Contains(body, `id="err-secret">secret: required`) {
		t.Errorf("empty login form: %d", code)
	}
	// A login from another site is refused.
	req, _ := http.NewRequest(http.MethodPost, c.Base+"/console/login", strings.NewReader("name=alice&secret=a-secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := c.HTTP.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("cross-site login: %v %v", resp.StatusCode, err)
	}

	// After the limit, even the right secret is throttled.
	c2 := newServer(t, console.Deps{})
	for range 5 {
		c2.Post("/console/login", url.Values{"name": {"alice"}, "secret": {"guess"}})
	}
	if code, _, _ := c2.Post("/console/login", url.Values{"name": {"alice"}, "secret": {"a-secret"}}); code != http.StatusTooManyRequests {
		t.Errorf("6th login after 5 failures: %d, want 429", code)
	}

	csrf := c.Login("alice", "a-secret")
	u, _ := url.Parse(c.Base + "/console/")
	var session *http.Cookie
	for _, ck := range c.HTTP.Jar.Cookies(u) {
		if ck.Name == "riskflow_console" {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	code, _, h = c.Get("/console/rules")
	if code != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("rules page: %d, CSP %q", code, h.Get("Content-Security-Policy"))
	}

	add := url.Values{"action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.1"}, "why": {"test"}}
	// No token, a wrong token, another admin's token, another site's origin: all refused.
	if code, _, _ := c.Post("/console/lists", add); code != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d", code)
	}
	bad := url.Values{"csrf": {csrf[:len(csrf)-1] + "x"}}
	for k, v := range add {
		bad[k] = v
	}
	if code, _, _ := c.Post("/console/lists", bad); code != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token: %d", code)
	}
	bobToken := c.Fork().Login("bob", "b-secret")
	withBob := url.Values{"csrf": {bobToken}}
	for k, v := range add {
		withBob[k] = v
	}
	if code, _, _ := c.Post("/console/lists", withBob); code != http.StatusForbidden {
		t.Errorf("alice's POST with bob's CSRF token: %d", code)
	}
	good := url.Values{"csrf": {csrf}}
	for k, v := range add {
		good[k] = v
	}
	req, _ = http.NewRequest(http.MethodPost, c.Base+"/console/lists", strings.NewReader(good.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := c.HTTP.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST with the right token: %v %v", resp.StatusCode, err)
	}
	if code, _, h := c.Post("/console/lists", good); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Added") {
		t.Errorf("POST with the token: %d %s", code, h.Get("Location"))
	}

	// A tampered cookie is no session.
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(u, []*http.Cookie{{Name: "riskflow_console", Value: strings.Replace(session.Value, "alice", "bob", 1), Path: "/console"}})
	c.HTTP.Jar = jar
	if code, _, _ := c.Get("/console/rules"); code != http.StatusSeeOther {
		t.Errorf("tampered cookie: %d, want a redirect to the login", code)
	}

	// Log out ends the session on this node even for a copy of the cookie.
	jar, _ = cookiejar.New(nil)
	jar.SetCookies(u, []*http.Cookie{session})
	c.HTTP.Jar = jar
	if code, _, _ := c.Post("/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("logout: %d", code)
	}
	jar.SetCookies(u, []*http.Cookie{session})
	if code, _, _ := c.Get("/console/rules"); code != http.StatusSeeOther {
		t.Errorf("the cookie still works after logout: %d", code)
	}
}

func TestSessionCookieFlags(t *testing.T) {
	s, err := console.New(console.Deps{Admins: map[string]string{"alice": "a-secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/console/login", strings.NewReader("name=alice&secret=a-secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.ServeHTTP(rec, req)
	ck := rec.Result().Cookies()
	if len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/console" {
		t.Fatalf("cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/console", ck)
	}
}

// A failed login is in the node's log with the admin name (when it is one) and the client, never
// the secret nor a name that is no admin's (a secret typed into the name field).
func TestFailedLoginIsLogged(t *testing.T) {
	var buf syncbuf.Buffer
	s, err := console.New(console.Deps{Admins: map[string]string{"alice": "a-secret"}}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"name=alice&secret=guess-one", "name=a-secret-typo&secret=guess-two", "name=alice&secret=a-secret"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/console/login", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		s.ServeHTTP(rec, req)
	}
	out := buf.String()
	if strings.Count(out, "console: failed login") != 2 || !strings.Contains(out, "admin=alice client=192.0.2.1") || !strings.Contains(out, `admin="(not an admin)"`) {
		t.Errorf("failed logins not logged with admin and client:\n%s", out)
	}
	for _, secret := range []string{"guess-one", "guess-two", "a-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
}

func TestLoginWarnsOnPlainHTTP(t *testing.T) {
	s, err := console.New(console.Deps{Admins: map[string]string{"alice": "a-secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, warn := range map[string]bool{"console.example.com": true, "10.0.0.5:8080": true, "127.0.0.1:8080": false, "[::1]:8080": false, "localhost:8080": false} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "http://"+host+"/console/login", nil)
		s.ServeHTTP(rec, req)
		if got := strings.Contains(rec.Body.String(), "plain HTTP"); got != warn {
			t.Errorf("%s: warned %v, want %v", host, got, warn)
		}
	}
}

func TestFormsRejectBadInputNextToTheField(t *testing.T) {
	lists := &fakeLists{}
	c := newServer(t, console.Deps{Lists: lists, Rules: &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1"}}})
	csrf := c.Login("alice", "a-secret")
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		name  string
		form  url.Values
		field string
		want  string
	}{
		{"phone", form("action", "block", "kind", "phone", "value", "1380013800", "why", "x"), "value", "value: phone:"},
		{"ip", form("action", "block", "kind", "ip", "value", "10.0.0.300", "why", "x"), "value", "not an IPv4 or IPv6 address"},
		{"cidr host bits", form("action", "block", "kind", "cidr", "value", "192.0.2.77/24", "why", "x"), "value", "host bits"},
		{"cidr without a length", form("action", "block", "kind", "cidr", "value", "192.0.2.0", "why", "x"), "value", "for one address choose ip"},
		{"prefix", form("action", "block", "kind", "prefix", "value", "2380013", "why", "x"), "value", "first 7 digits"},
		{"device", form("action", "block", "kind", "device", "value", "a b", "why", "x"), "value", "without spaces"},
		{"action", form("action", "deny", "kind", "ip", "value", "192.0.2.1", "why", "x"), "action", "allow or block"},
		{"kind", form("action", "block", "kind", "email", "value", "a@b", "why", "x"), "kind", "one of phone, ip, cidr, device, prefix"},
		{"why", form("action", "block", "kind", "ip", "value", "192.0.2.1", "why", " "), "why", "why: required"},
		// A number in a device id or a note would be stored as typed, in the lists topic for good.
		{"device holding a number", form("action", "block", "kind", "device", "value", "tel:13912345678", "why", "x"), "value", "phone number"},
		{"why holding a number", form("action", "block", "kind", "ip", "value", "192.0.2.1", "why", "user 139 1234 5678 complained"), "why", "phone number"},
		// A number typed as a network: netip's error quoted it again, and the page showed it.
		{"cidr holding a number", form("action", "block", "kind", "cidr", "value", "13912345678/24", "why", "x"), "value", "is not a CIDR network"},
		{"device holding a labelled number", form("action", "block", "kind", "device", "value", "phone13912345678", "why", "x"), "value", "phone number"},
	}
	for _, tc := range cases {
		code, body, _ := c.Post("/console/lists", tc.form)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.name, code)
		}
		if strings.Contains(body, "1234 5678") || strings.Contains(body, "12345678") {
			t.Errorf("%s: the number is echoed back", tc.name)
		}
		re := regexp.MustCompile(`id="err-` + tc.field + `">([^<]*)<`)
		m := re.FindStringSubmatch(body)
		if m == nil || !strings.Contains(m[1], tc.want) {
			t.Errorf("%s: error next to %s = %v, want %q", tc.name, tc.field, m, tc.want)
		}
	}
	if len(lists.entries) != 0 {
		t.Fatalf("bad entries were added: %+v", lists.entries)
	}
	// A phone is stored hashed and shown masked, and the number is not echoed back.
	code, body, _ := c.Post("/console/lists", form("action", "block", "kind", "phone", "value", "+86 138-0013-800", "why", "x"))
	if code != http.StatusBadRequest || strings.Contains(body, "138-0013-800") {
		t.Errorf("a malformed number: %d, echoed: %v", code, strings.Contains(body, "138-0013-800"))
	}
	// A number as a person pastes it is read as lookup reads it.
	c.Post("/console/lists", form("action", "block", "kind", "phone", "value", "+86 138-0013-8000", "why", "farm"))
	if len(lists.entries) != 1 || lists.entries[0].Value != "hash-of-8000" || lists.entries[0].Shown != "1380013****" || lists.entries[0].Who != "alice" {
		t.Fatalf("phone entry %+v", lists.entries)
	}
	_, body, _ = c.Get("/console/lists")
	table := body[strings.Index(body, `id="entries"`):]
	if strings.Contains(table, "13800138000") || !strings.Contains(table, "1380013****") {
		t.Error("the lists page shows the number or not its masked form")
	}

	// Overview filters.
	for q, field := range map[string]string{"range=2y": "range", "range=custom&from=x&to=y": "from", "range=custom&from=2026-01-02T00:00&to=2026-01-01T00:00": "to", "app=a%01b": "app"} {
		_, body, _ := c.Get("/console/overview?" + q)
		if !strings.Contains(body, `class="err"`) || (field != "range" && !strings.Contains(body, `id="err-`+field+`"`)) {
			t.Errorf("overview?%s: no error next to %s", q, field)
		}
	}
	// Investigate: a number goes out of the URL (redirect to its hash).
	code, _, h := c.Get("/console/investigate?kind=phone&value=13800138000")
	if code != http.StatusSeeOther || strings.Contains(h.Get("Location"), "13800138000") || !strings.Contains(h.Get("Location"), "phone_hash") {
		t.Errorf("investigate a number: %d → %s", code, h.Get("Location"))
	}
	// The key's list entries: for an address, the networks holding it too.
	c.Post("/console/lists", form("action", "block", "kind", "cidr", "value", "198.51.100.0/24", "why", "dc"))
	_, body, _ = c.Get("/console/investigate?kind=ip&value=198.51.100.9")
	listed := body[strings.Index(body, `id="listed"`):strings.Index(body, "Live features")]
	if !strings.Contains(listed, "198.51.100.0/24") {
		t.Errorf("investigate an address in a blocked network: not shown as listed:\n%s", listed)
	}
	_, body, _ = c.Get("/console/investigate?kind=ip&value=198.51.101.9")
	if !strings.Contains(body, "is on no allow or block list") {
		t.Error("an address outside every listed network is shown as listed")
	}
	if _, body, _ := c.Get("/console/investigate?kind=ip&value=nope"); !strings.Contains(body, `id="err-value"`) {
		t.Error("investigate a bad IP: no error next to the value")
	}
}

func TestDraftLintTestPromote(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "draft": {"pack: p\n  bad: 1\n"}})
	// The ^ stands under column 3 of line 2 ("  bad: 1"): two spaces after the gutter's one.
	if code != http.StatusBadRequest || !strings.Contains(body, `<span id="L2" class="line bad">`) ||
		!strings.Contains(body, `<span class="lint-msg"><i></i>   ^ rule r1: when: undeclared reference to &#39;bad&#39;`) {
		t.Errorf("promote a draft with a problem: %d, not flagged at line 2", code)
	}
	if len(rules.promoted) != 0 {
		t.Fatal("a draft with problems was promoted")
	}
	_, body, _ = c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"test"}, "draft": {"pack: p\n# fails\n"}})
	if !strings.Contains(body, "1 of 2 tests failed.") || !strings.Contains(body, "FAIL: score 0, want 300") {
		t.Error("test results not shown")
	}
	c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"test"}, "draft": {"pack: p\n"}})
	// The draft is kept between pages.
	if _, body, _ := c.Get("/console/rules/draft"); !strings.Contains(body, ">pack: p\n</textarea>") {
		t.Error("the saved draft is not in the editor")
	}
	code, _, h := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "draft": {"pack: p\n"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Promoted+version+00000000000000b1") || len(rules.promoted) != 1 || rules.promoted[0] != "alice" {
		t.Errorf("promote: %d %s, promoted by %v", code, h.Get("Location"), rules.promoted)
	}
	if code, _, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"lint"}, "draft": {"  "}}); code != http.StatusBadRequest {
		t.Errorf("empty draft: %d", code)
	}
	if code, body, _ := c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"x; drop"}}); code != http.StatusBadRequest || !strings.Contains(body, "version: 16 hex digits") {
		t.Errorf("rollback to a malformed version: %d", code)
	}
	// The diff of a version against the one before it.
	_, body, _ = c.Get("/console/rules/versions/00000000000000a2")
	if !strings.Contains(body, `<span class="ddel">- rules: [a]</span>`) || !strings.Contains(body, `<span class="ddel">- rules: [a]</span>
<span class="dadd">&#43; rules: [b]</span>`) {
		t.Errorf("diff:\n%s", body)
	}
}

func TestBacktestProgressAndCancel(t *testing.T) {
	bt := &blockingBacktest{started: make(chan struct{})}
	c := newServer(t, console.Deps{Rules: &fakeRules{live: console.PackInfo{Content: []byte("pack: p\n")}}, Backtest: bt})
	csrf := c.Login("alice", "a-secret")
	if code, body, _ := c.Post("/console/backtests", url.Values{"csrf": {csrf}, "hours": {"0"}}); code != http.StatusBadRequest || !strings.Contains(body, `<span class="err" id="err-hours">hours: a whole number from 1 to 168</span>`) {
		t.Errorf("0 hours: %d, no error next to hours", code)
	}
	code, _, h := c.Post("/console/backtests", url.Values{"csrf": {csrf}, "hours": {"4"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/backtests/") {
		t.Fatalf("start: %d %s", code, h.Get("Location"))
	}
	job := h.Get("Location")
	<-bt.started
	var p struct {
		Read    int64   `json:"read"`
		Percent float64 `json:"percent"`
		Done    bool    `json:"done"`
		Error   string  `json:"error"`
	}
	_, body, _ := c.Get(job + "/progress")
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Read != 1000 || p.Done || p.Percent < 24 || p.Percent > 26 {
		t.Fatalf("progress %s (%v)", body, err)
	}
	if _, body, _ := c.Get(job); !strings.Contains(body, `id="cancel"`) {
		t.Error("a running backtest has no cancel button")
	}
	if code, _, _ := c.Post(job+"/cancel", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("cancel: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ = c.Get(job + "/progress")
		json.Unmarshal([]byte(body), &p)
		if p.Done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Done || !strings.Contains(p.Error, "cancelled by alice") {
		t.Errorf("after cancel: %s", body)
	}
}

type countingHistory struct {
	apps    []string // Apps' answer; nil: a1
	mu      sync.Mutex
	calls   int
	fail    bool
	looked  []console.Lookup
	filters []console.Filter
}

type fakeExplain struct{ got []console.Lookup }

func (f *fakeExplain) Explain(_ context.Context, l console.Lookup) ([]console.Feature, error) {
	f.got = append(f.got, l)
	return []console.Feature{{Name: "phone_verifies_10m", Value: "4 (read by the pack)"}}, nil
}

type fakeLabels struct{ marks []string }

func (f *fakeLabels) Mark(_ context.Context, app, target, id, label, who string) error {
	f.marks = append(f.marks, strings.Join([]string{app, target, id, label, who}, "/"))
	return nil
}

// Investigate: a number typed in goes by POST, its live features are read with the number, its
// history and lists by its hash; the number is in no URL and not echoed; decisions and attempts
// are marked fraud or legit.
func TestInvestigate(t *testing.T) {
	h, ex, lb := &countingHistory{}, &fakeExplain{}, &fakeLabels{}
	c := newServer(t, console.Deps{History: h, Explain: ex, Labels: lb, Lists: &fakeLists{}})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Post("/console/investigate", url.Values{"csrf": {csrf}, "kind": {"phone"}, "value": {"+8613800138000"}})
	if code != http.StatusOK || strings.Contains(body, "13800138000") || !strings.Contains(body, "1380013****") {
		t.Fatalf("phone lookup: %d, number echoed or not masked", code)
	}
	if len(ex.got) != 1 || ex.got[0].Value != "13800138000" || len(h.looked) != 1 || h.looked[0].Value != "hash-of-8000" {
		t.Errorf("explain got %+v, history got %+v", ex.got, h.looked)
	}
	// A number as a person pastes it (spaces, dashes, full-width digits) is read as lookup reads it.
	for _, written := range []string{"+86 138-0013-8000", "１３８ ００１３ ８０００"} {
		code, body, _ := c.Post("/console/investigate", url.Values{"csrf": {csrf}, "kind": {"phone"}, "value": {written}})
		if code != http.StatusOK || !strings.Contains(body, "1380013****") || ex.got[len(ex.got)-1].Value != "13800138000" {
			t.Errorf("investigate %q: %d, explain got %+v", written, code, ex.got[len(ex.got)-1])
		}
	}
	ex.got, h.looked = ex.got[:1], h.looked[:1]
	if !strings.Contains(body, "phone_verifies_10m") || !strings.Contains(body, "d-7") || !strings.Contains(body, "ip_many_phones (enforce): 38 phones from this IP in 1h") || !strings.Contains(body, "ev-9") {
		t.Error("features, decisions or attempts missing")
	}
	if !strings.Contains(body, `name="back" value="/console/investigate?kind=phone_hash&amp;value=hash-of-8000"`) {
		t.Error("the label forms do not come back to the number's hash")
	}
	// By hash (a link): history, no live features (the state needs the number).
	_, body, _ = c.Get("/console/investigate?kind=phone_hash&value=" + strings.Repeat("ab", 32))
	if !strings.Contains(body, "type it in the form") || len(ex.got) != 1 {
		t.Error("a hash lookup asked the live state")
	}
	code, _, hd := c.Post("/console/investigate/label", url.Values{"csrf": {csrf}, "app_id": {"a1"}, "target": {"decision"}, "id": {"d-7"}, "label": {"fraud"}, "back": {"/console/investigate?kind=ip&value=192.0.2.1"}})
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "Decision+d-7+marked+fraud+by+alice") || len(lb.marks) != 1 || lb.marks[0] != "a1/decision/d-7/fraud/alice" {
		t.Errorf("label: %d %s %v", code, hd.Get("Location"), lb.marks)
	}
	_, _, hd = c.Post("/console/investigate/label", url.Values{"csrf": {csrf}, "app_id": {"a1"}, "target": {"event"}, "id": {"ev-9"}, "label": {"maybe"}})
	if !strings.Contains(hd.Get("Location"), "label%3A+fraud+or+legit") && !strings.Contains(hd.Get("Location"), "label:+fraud+or+legit") || len(lb.marks) != 1 {
		t.Errorf("a bad label: %s %v", hd.Get("Location"), lb.marks)
	}
}

func (h *countingHistory) Apps(context.Context) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.apps != nil {
		return h.apps, nil
	}
	return []string{"a1"}, nil
}
func (h *countingHistory) Overview(_ context.Context, f console.Filter) (console.Overview, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	h.filters = append(h.filters, f)
	if h.fail {
		return console.Overview{}, fmt.Errorf("clickhouse away")
	}
	return console.Overview{Scores: []console.HourScores{{Hour: f.From, S0: 7, Events: 7}}}, nil
}
func (h *countingHistory) Activity(_ context.Context, l console.Lookup, _ int) (console.Activity, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.looked = append(h.looked, l)
	return console.Activity{Attempts: []console.Attempt{{AppID: "a1", EventID: "ev-9", Score: 300}},
		Decisions: []console.Decision{{AppID: "a1", DecisionID: "d-7", Score: 600, Hits: []string{"ip_many_phones (enforce): 38 phones from this IP in 1h"}}}}, nil
}

// The overview's history is cached for CacheFor per filter; failures are not cached.
func TestOverviewCache(t *testing.T) {
	// The session cookie expires 8 hours after the console's clock, and the test's cookie jar
	// judges it by the real one: a fixed date failed every run 8 hours after it.
	now := time.Now().UTC().Truncate(time.Minute)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := &countingHistory{fail: true}
	c := newServer(t, console.Deps{History: h, Now: clock, CacheFor: time.Minute})
	c.Login("alice", "a-secret")
	get := func(q string) string { _, body, _ := c.Get("/console/overview?" + q); return body }
	get("range=24h")
	h.fail = false
	if body := get("range=24h"); !strings.Contains(body, `<span id="total">7</span>`) || h.calls != 2 {
		t.Fatalf("after a failure: %d calls", h.calls)
	}
	get("range=24h")
	get("range=24h&app=a1")
	if h.calls != 3 {
		t.Errorf("same filter twice and another app: %d calls, want 3", h.calls)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	get("range=24h")
	if h.calls != 4 {
		t.Errorf("after CacheFor: %d calls, want 4", h.calls)
	}
}

func TestNotAvailablePartsAreSaid(t *testing.T) {
	c := newServer(t, console.Deps{})
	c.Login("alice", "a-secret")
	for path, want := range map[string]string{
		"/console/overview":                      "history: not available on this node",
		"/console/rules":                         "rule packs: not available on this node",
		"/console/lists":                         "lists: not available on this node",
		"/console/investigate?kind=ip&value=::1": "live features: not available on this node",
	} {
		code, body, _ := c.Get(path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, does not say %q", path, code, want)
		}
	}
	if _, err := console.New(console.Deps{}, nil); err != nil {
		t.Fatal(err)
	}
	s, _ := console.New(console.Deps{}, nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console/login", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("a console without admins answers %d, want 404", rec.Code)
	}
}

// With two approvals a promotion is a request: its author cannot approve it, another admin's
// approval promotes it, recorded with both names.
func TestPromotionNeedsASecondAdmin(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrfA := alice.Login("alice", "a-secret")
	code, _, h := alice.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"promote"}, "draft": {"pack: p\nrules: []\n"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "requested+by+alice") || len(rules.promoted) != 0 {
		t.Fatalf("request: %d %s, promoted %v", code, h.Get("Location"), rules.promoted)
	}
	_, body, _ := alice.Get("/console/rules")
	m := pendingLink(t, body, "the request is not listed under Waiting for approval")
	if _, body, _ := alice.Get(m[1]); strings.Contains(body, `id="approve"`) || !strings.Contains(body, "Another admin must approve") {
		t.Error("the author is offered to approve their own request")
	}
	if code, body, _ := alice.Post(m[1], url.Values{"csrf": {csrfA}, "decision": {"approve"}}); code != http.StatusForbidden || !strings.Contains(body, "a second admin must approve") || len(rules.promoted) != 0 {
		t.Errorf("self-approval: %d, promoted %v", code, rules.promoted)
	}
	bob := alice.Fork()
	csrfB := bob.Login("bob", "b-secret")
	if _, body, _ := bob.Get(m[1]); !strings.Contains(body, `id="approve"`) || !strings.Contains(body, `<span class="dadd">&#43; rules: []</span>`) {
		t.Error("bob sees no approve button or no diff against the live pack")
	}
	code, _, h = bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "approved+by+bob") || len(rules.promoted) != 1 || rules.promoted[0] != "alice,approved-by:bob" {
		t.Fatalf("approval: %d %s, promoted %v", code, h.Get("Location"), rules.promoted)
	}
	if code, _, _ := bob.Get(m[1]); code != http.StatusNotFound {
		t.Errorf("an approved request is still there: %d", code)
	}
	// Withdrawn: gone, nothing promoted.
	alice.Get("/console/rules/draft") // "Edit a draft": the page of the draft saved with the request
	alice.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"promote"}, "draft": {"pack: p\nrules: [x]\n"}})
	_, body, _ = alice.Get("/console/rules")
	m = pendingLink(t, body, "second request not listed")
	if code, _, h := alice.Post(m[1], url.Values{"csrf": {csrfA}, "decision": {"withdraw"}}); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "withdrawn") || len(rules.promoted) != 1 {
		t.Errorf("withdraw: %d %s", code, h.Get("Location"))
	}
}

// Two nodes behind a load balancer share one State: a draft saved through one opens on the other,
// a promotion asked on one is approved on the other, and a backtest running on one is shown on
// the other as running there and is cancelled from it. (cmd/riskflow runs the same on ClickHouse:
// TestConsoleStateAcrossNodes.)
func TestConsoleStateAcrossNodes(t *testing.T) {
	state := console.NewMemoryState()
	rulesA := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	rulesB := &fakeRules{live: rulesA.live}
	bt := &blockingBacktest{started: make(chan struct{})}
	nodeA := newServer(t, console.Deps{Rules: rulesA, Backtest: bt, Approvals: 2, State: state, Node: "node-a"})
	nodeB := newServer(t, console.Deps{Rules: rulesB, Backtest: doneBacktest{}, Approvals: 2, State: state, Node: "node-b"})
	crossNodeFlows(t, nodeA, nodeB, func() []string { return rulesB.promoted }, bt.started)

	// A run done on b: its report is on a.
	bob := nodeB.Fork()
	csrf := bob.Login("bob", "b-secret")
	code, _, h := bob.Post("/console/backtests", url.Values{"csrf": {csrf}, "hours": {"2"}})
	if code != http.StatusSeeOther {
		t.Fatalf("start on b: %d", code)
	}
	aliceA := nodeA.Fork()
	aliceA.Login("alice", "a-secret")
	waitUntil(t, "b's report on a", func() bool {
		_, body, _ := aliceA.Get(h.Get("Location"))
		return strings.Contains(body, `id="report"`) && strings.Contains(body, `<td>0</td><td>300</td><td class="n">50</td>`)
	})
	// The report by app: the draft's changes fall on shop/cn; an app id's bidi character shown
	// as its escape.
	_, body, _ := aliceA.Get(h.Get("Location"))
	for _, want := range []string{`id="apps"`, `<td class="id">shop/cn</td><td class="n">60</td><td class="n">45</td><td class="n">0</td><td class="n">45</td>`, `app\u202E1`, "Flagged: score ≥ 600"} {
		if !strings.Contains(body, want) {
			t.Errorf("the report by app lacks %q:\n%s", want, body)
		}
	}
}

// doneBacktest answers at once with a report: 50 events moved from 0 to 300.
type doneBacktest struct{}

func (doneBacktest) Backtest(ctx context.Context, draft []byte, from, to time.Time, progress func(backtest.Progress)) (*backtest.Report, error) {
	return &backtest.Report{RunID: "r1", Events: 100, Changed: 50, Transitions: []backtest.Transition{{From: 0, To: 300, Count: 50, Examples: []string{"ev-1"}}},
		FlagAt: 600, Apps: []backtest.AppDiff{{AppID: "shop/cn", Events: 60, Changed: 45, CandidateFlagged: 45}, {AppID: "app\u202e1", Events: 40, Changed: 5}}}, nil
}

// crossNodeFlows drives the draft, approval and cancel flows across two nodes: a, where alice
// works and a backtest runs, and b, where bob approves and cancels. promotedOnB lists who
// promoted through b; started is closed once a's backtest runs.
func crossNodeFlows(t *testing.T, a, b *client, promotedOnB func() []string, started <-chan struct{}) {
	t.Helper()
	csrfA := a.Login("alice", "a-secret")
	const draft = "pack: p\nrules: [shared-draft]\n"
	if code, _, _ := a.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"lint"}, "draft": {draft}}); code != http.StatusOK {
		t.Fatalf("save the draft on a: %d", code)
	}
	aliceOnB := b.Fork()
	aliceOnB.Login("alice", "a-secret")
	if _, body, _ := aliceOnB.Get("/console/rules/draft"); !strings.Contains(body, "rules: [shared-draft]") {
		t.Errorf("alice's draft saved on a is not hers on b:\n%s", body)
	}

	// Asked on a, approved on b.
	code, _, h := a.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"promote"}, "draft": {draft}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "requested+by+alice") {
		t.Fatalf("request on a: %d %s", code, h.Get("Location"))
	}
	bob := b.Fork()
	csrfB := bob.Login("bob", "b-secret")
	_, body, _ := bob.Get("/console/rules")
	m := pendingLink(t, body, "the request asked on a is not listed on b")
	code, _, h = bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "approved+by+bob") {
		t.Fatalf("approval on b: %d %s", code, h.Get("Location"))
	}
	if p := promotedOnB(); len(p) != 1 || p[0] != "alice,approved-by:bob" {
		t.Errorf("promoted through b: %v", p)
	}
	if code, _, _ := a.Get(m[1]); code != http.StatusNotFound {
		t.Errorf("the request approved on b is still open on a: %d", code)
	}

	// Started on a, seen and cancelled on b.
	code, _, h = a.Post("/console/backtests", url.Values{"csrf": {csrfA}, "hours": {"4"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/backtests/") {
		t.Fatalf("start on a: %d %s", code, h.Get("Location"))
	}
	job := h.Get("Location")
	<-started
	var p struct {
		Read     int64  `json:"read"`
		Node     string `json:"node"`
		Here     bool   `json:"here"`
		Done     bool   `json:"done"`
		Error    string `json:"error"`
		CancelBy string `json:"cancel_by"`
	}
	waitUntil(t, "b shows a's progress", func() bool {
		_, body, _ := bob.Get(job + "/progress")
		return json.Unmarshal([]byte(body), &p) == nil && p.Read == 1000
	})
	if p.Here || p.Node != "node-a" || p.Done {
		t.Errorf("on b: %+v", p)
	}
	if _, body, _ := bob.Get(job); !strings.Contains(body, `id="elsewhere"`) || !strings.Contains(body, `id="cancel"`) {
		t.Errorf("b's page does not say the run is elsewhere, or offers no cancel:\n%s", body)
	}
	if _, body, _ := bob.Get("/console/rules/draft"); !strings.Contains(body, job) {
		t.Error("b does not list the run of a")
	}
	if code, _, h := bob.Post(job+"/cancel", url.Values{"csrf": {csrfB}}); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Cancel+requested") {
		t.Errorf("cancel on b: %d %s", code, h.Get("Location"))
	}
	waitUntil(t, "a's run cancelled from b, as b sees it", func() bool {
		_, body, _ := bob.Get(job + "/progress")
		return json.Unmarshal([]byte(body), &p) == nil && p.Done
	})
	if !strings.Contains(p.Error, "cancelled by bob") {
		t.Errorf("after the cancel on b: %+v", p)
	}
	_, body, _ = a.Get(job + "/progress")
	if json.Unmarshal([]byte(body), &p) != nil || !p.Here || !p.Done || !strings.Contains(p.Error, "cancelled by bob") {
		t.Errorf("on a after the cancel: %s", body)
	}
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The session cookie lives as long as the session whatever the browser's clock says of this
// node's: a node clock a year behind (or a test's fixed clock) set an Expires date already past,
// and the browser dropped the cookie at once.
func TestSessionCookieIgnoresTheNodeClock(t *testing.T) {
	past := time.Now().AddDate(-1, 0, 0)
	c := newServer(t, console.Deps{Lists: &fakeLists{}, Now: func() time.Time { return past }})
	c.Login("alice", "a-secret") // fails the test when the session is not kept
	if code, _, _ := c.Get("/console/lists"); code != http.StatusOK {
		t.Errorf("lists after login with the node's clock a year behind: %d", code)
	}
}

// Bad bytes in a list entry or a lookup are refused next to the field: a NUL, an escape sequence
// or a byte that is not UTF-8 would go to the lists topic (and every node's page) as sent, and a
// device id no event can carry (a number in it, a control character) matches nothing — looked up,
// a number in it would go into the label forms' URLs and the history's queries.
func TestBadBytesInListsAndLookupsAreRefused(t *testing.T) {
	lists := &fakeLists{}
	h, ex := &countingHistory{}, &fakeExplain{}
	c := newServer(t, console.Deps{Lists: lists, History: h, Explain: ex})
	csrf := c.Login("alice", "a-secret")
	entry := func(kind, value, why string) url.Values {
		return url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {kind}, "value": {value}, "why": {why}}
	}
	cases := []struct {
		name, field, want string
		form              url.Values
	}{
		{"device with a control character", "value", "control character", entry("device", "dev\x01ice", "x")},
		{"device not UTF-8", "value", "not valid UTF-8", entry("device", "dev\xffice", "x")},
		{"why with a NUL", "why", "control character", entry("ip", "192.0.2.1", "nul\x00byte")},
		{"why with an escape sequence", "why", "control character", entry("ip", "192.0.2.1", "esc\x1b[31m red")},
		{"why not UTF-8", "why", "not valid UTF-8", entry("ip", "192.0.2.1", "bad\xff\xfeutf")},
	}
	for _, tc := range cases {
		code, body, _ := c.Post("/console/lists", tc.form)
		re := regexp.MustCompile(`id="err-` + tc.field + `">([^<]*)<`)
		if m := re.FindStringSubmatch(body); code != http.StatusBadRequest || m == nil || !strings.Contains(m[1], tc.want) {
			t.Errorf("%s: %d, error next to %s = %v, want %q", tc.name, code, tc.field, m, tc.want)
		}
	}
	if len(lists.entries) != 0 {
		t.Fatalf("bad entries were added: %+v", lists.entries)
	}
	// An IPv6 zone is free text after the address: no event's address has one.
	code, body, _ := c.Get("/console/investigate?kind=ip&value=" + url.QueryEscape("fe80::1%13912345678"))
	if code != http.StatusBadRequest || !strings.Contains(body, `id="err-value"`) || strings.Contains(body, "13912345678") {
		t.Errorf("look up an address with a zone holding a number: %d, echoed: %v", code, strings.Contains(body, "13912345678"))
	}
	for name, v := range map[string]string{"a number": "tel:13912345678", "a control character": "dev\x01ice", "not UTF-8": "dev\xffice"} {
		for _, send := range []func() (int, string, http.Header){
			func() (int, string, http.Header) {
				return c.Post("/console/investigate", url.Values{"csrf": {csrf}, "kind": {"device"}, "value": {v}})
			},
			func() (int, string, http.Header) {
				return c.Get("/console/investigate?kind=device&value=" + url.QueryEscape(v))
			},
		} {
			code, body, _ := send()
			if code != http.StatusBadRequest || !strings.Contains(body, `id="err-value"`) {
				t.Errorf("look up a device id holding %s: %d, no error next to the value", name, code)
			}
			if strings.Contains(body, "13912345678") {
				t.Errorf("look up a device id holding %s: the number is echoed back", name)
			}
		}
	}
	if len(h.looked) != 0 || len(ex.got) != 0 {
		t.Errorf("bad device ids were looked up: history %+v, live state %+v", h.looked, ex.got)
	}
}

// A draft is kept in console_state as typed: one holding a phone number is not saved (lint says
// where the number is), and the saved draft stays the previous one.
func TestDraftHoldingAPhoneNumberIsNotSaved(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	state := console.NewMemoryState()
	c := newServer(t, console.Deps{Rules: rules, State: state})
	csrf := c.Login("alice", "a-secret")
	c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"save"}, "draft": {"pack: p\n# first\n"}})
	for _, action := range []string{"save", "lint", "test"} {
		_, body, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {action}, "draft": {"pack: p\n# VIP 139 1234 5678\n"}})
		if !strings.Contains(body, "The draft is not saved: it holds a phone number") {
			t.Errorf("%s: the page does not say the draft was not saved", action)
		}
		it, ok, err := state.Get(context.Background(), console.ItemDraft, "alice")
		if err != nil || !ok || strings.Contains(string(it.Body), "5678") || string(it.Body) != "pack: p\n# first\n" {
			t.Fatalf("%s: the saved draft is %q (%v, %v)", action, it.Body, ok, err)
		}
	}
}

// Behind a load balancer every login comes from its address: failed logins are counted against
// the client it names (api.trusted_proxies, as the API counts failed authentications), so one
// guessing client does not lock every admin out — nor can a client pick its own bucket by writing
// X-Forwarded-For itself.
func TestFailedLoginsCountedPerClientBehindAProxy(t *testing.T) {
	srv := api.New(api.Config{TrustedProxies: []string{"127.0.0.1", "::1"}}, nil, nil)
	c := newServer(t, console.Deps{Lists: &fakeLists{}, ClientAddr: srv.ClientAddr})
	login := func(client, secret string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.Base+"/console/login", strings.NewReader(url.Values{"name": {"alice"}, "secret": {secret}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", client)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 5 {
		login("203.0.113.9", "guess")
	}
	if code := login("203.0.113.9", "a-secret"); code != http.StatusTooManyRequests {
		t.Errorf("the guessing client's 6th login: %d, want 429", code)
	}
	if code := login("198.51.100.20", "a-secret"); code != http.StatusSeeOther {
		t.Errorf("another client behind the same proxy: %d, want the login to work", code)
	}
	// One /64 is one client: an IPv6 guesser cannot walk its own network for fresh buckets.
	for i := range 5 {
		login(fmt.Sprintf("2001:db8:1:2::%x", i+1), "guess")
	}
	if code := login("2001:db8:1:2::99", "a-secret"); code != http.StatusTooManyRequests {
		t.Errorf("another address of the guessing /64: %d, want 429", code)
	}
}

// A path is the caller's: a page that is not there, or a version not recorded, does not echo a
// number in it.
func TestNotFoundPagesDoNotEchoNumbers(t *testing.T) {
	c := newServer(t, console.Deps{Rules: &fakeRules{}})
	for _, path := range []string{"/console/13912345678", "/console/call%20139%201234%205678/x"} {
		code, body, _ := c.Get(path)
		if code != http.StatusNotFound || strings.Contains(body, "5678") || !strings.Contains(body, "There is no console page") {
			t.Errorf("%s: %d, number echoed: %v", path, code, strings.Contains(body, "5678"))
		}
	}
	c.Login("alice", "a-secret")
	code, body, _ := c.Get("/console/rules/versions/13912345678")
	if code != http.StatusNotFound || strings.Contains(body, "5678") || !strings.Contains(body, "no recorded version") {
		t.Errorf("an unknown version: %d, number echoed: %v", code, strings.Contains(body, "5678"))
	}
}

// A path not in its clean form is no console page either: the console's ServeMux answered
// /console//13912345678 with a redirect whose Location (and body) held the number as sent —
// into the browser's history and every proxy's log — where the same number one slash further
// got the masked 404 (held-out run).
func TestUncleanPathsDoNotRedirectWithTheirNumber(t *testing.T) {
	c := newServer(t, console.Deps{Rules: &fakeRules{}})
	c.Login("alice", "a-secret")
	for _, path := range []string{"/console//13912345678", "/console/x/../13912345678", "/console/./tel:139-1234-5678/", "/console/rules//versions/13912345678"} {
		code, body, h := c.Get(path)
		if code != http.StatusNotFound || strings.Contains(body+h.Get("Location"), "5678") || !strings.Contains(body, "There is no console page") {
			t.Errorf("GET %s: %d, Location %q, number echoed: %v", path, code, h.Get("Location"), strings.Contains(body+h.Get("Location"), "5678"))
		}
	}
	// A clean path with a trailing slash is clean: /console/ still goes to the overview.
	if code, _, h := c.Get("/console/"); code != http.StatusSeeOther || h.Get("Location") != "/console/overview" {
		t.Errorf("GET /console/: %d %q", code, h.Get("Location"))
	}
}

// Removing an entry by an id that is not one is refused without showing what was posted.
func TestListRemoveDoesNotEchoTheID(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Post("/console/lists/remove", url.Values{"csrf": {csrf}, "id": {"139 1234 5678"}})
	if code != http.StatusBadRequest || strings.Contains(body, "5678") || !strings.Contains(body, "id: not the id of a list entry") {
		t.Errorf("remove a number: %d, echoed: %v", code, strings.Contains(body, "5678"))
	}
}

// recordingState is a State that records the ids asked for.
type recordingState struct {
	console.State
	asked []string
}

func (r *recordingState) Get(ctx context.Context, kind, id string) (console.Item, bool, error) {
	r.asked = append(r.asked, kind+"/"+id)
	return r.State.Get(ctx, kind, id)
}

// A promotion request or backtest id that this console cannot have made is not looked up in the
// shared state (ClickHouse: the query would carry it into the server's log) nor echoed.
func TestForeignStateIDsAreNotLookedUp(t *testing.T) {
	st := &recordingState{State: console.NewMemoryState()}
	c := newServer(t, console.Deps{Rules: &fakeRules{}, Backtest: &blockingBacktest{started: make(chan struct{})}, State: st})
	csrf := c.Login("alice", "a-secret")
	for _, path := range []string{"/console/backtests/tel:13912345678", "/console/backtests/13912345678x/progress", "/console/rules/pending/139%201234%205678"} {
		code, body, _ := c.Get(path)
		if code != http.StatusNotFound || strings.Contains(body, "5678") {
			t.Errorf("GET %s: %d, echoed: %v", path, code, strings.Contains(body, "5678"))
		}
	}
	for _, path := range []string{"/console/backtests/tel:13912345678/cancel", "/console/rules/pending/tel:13912345678"} {
		code, body, h := c.Post(path, url.Values{"csrf": {csrf}, "decision": {"approve"}})
		if code >= 500 || strings.Contains(body+h.Get("Location"), "5678") {
			t.Errorf("POST %s: %d %s, echoed: %v", path, code, h.Get("Location"), strings.Contains(body+h.Get("Location"), "5678"))
		}
	}
	for _, a := range st.asked {
		if strings.Contains(a, "5678") {
			t.Errorf("looked up %q", a)
		}
	}
}

// The notice at the top of a page comes with the redirect that sets it, signed for the session: a
// link from elsewhere (or another admin's session) cannot make the console say what it wants.
func TestNoticesCannotBeForgedByALink(t *testing.T) {
	lists := &fakeLists{}
	c := newServer(t, console.Deps{Lists: lists, Rules: &fakeRules{}})
	csrf := c.Login("alice", "a-secret")
	const forged = "Your session expired: log in again at https://evil.example"
	for _, path := range []string{"/console/rules", "/console/rules/draft", "/console/lists", "/console/investigate"} {
		_, body, _ := c.Get(path + "?msg=" + url.QueryEscape(forged))
		if strings.Contains(body, "evil.example") {
			t.Errorf("%s shows a notice from the link", path)
		}
	}
	code, _, h := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.1"}, "why": {"test"}})
	if code != http.StatusSeeOther {
		t.Fatalf("add an entry: %d", code)
	}
	_, body, _ := c.Get(h.Get("Location"))
	if !strings.Contains(body, "Added: block ip 192.0.2.1.") {
		t.Errorf("the redirect's own notice is not shown (%s)", h.Get("Location"))
	}
	loc, _ := url.Parse(h.Get("Location"))
	q := loc.Query()
	q.Set("msg", forged)
	if _, body, _ := c.Get("/console/lists?" + q.Encode()); strings.Contains(body, "evil.example") {
		t.Error("another notice with the signature of a real one is shown")
	}
	bob := c.Fork()
	bob.Login("bob", "b-secret")
	if _, body, _ := bob.Get(h.Get("Location")); strings.Contains(body, "Added: block ip") {
		t.Error("alice's notice is shown in bob's session")
	}
}

// The overview's app filter is refused, not queried nor echoed, when it holds a number.
func TestOverviewAppFilterHoldingANumber(t *testing.T) {
	h := &countingHistory{}
	c := newServer(t, console.Deps{History: h, CacheFor: -1})
	c.Login("alice", "a-secret")
	_, body, _ := c.Get("/console/overview?app=13912345678")
	if !strings.Contains(body, `id="err-app"`) || strings.Contains(body, "5678") {
		t.Errorf("app=<a number>: no error next to app, or the number echoed: %v", strings.Contains(body, "5678"))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.filters {
		if f.App != "" {
			t.Errorf("the history was asked for app %q", f.App)
		}
	}
}

// An investigation may name an app: its own windows are added to the live features (the rules
// reading them judged, as for that app's checks), the history stays every app's, and the app is
// kept through a number's redirect to its hash and in the label forms' way back. Without it the
// console could not show an app's app_ip_* and app_prefix_* windows at all (lookup --app could).
func TestInvestigateWithAnApp(t *testing.T) {
	h, ex := &countingHistory{}, &fakeExplain{}
	c := newServer(t, console.Deps{History: h, Explain: ex, Labels: &fakeLabels{}, Lists: &fakeLists{}})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Get("/console/investigate?kind=ip&value=203.0.113.9&app=" + url.QueryEscape("shop/cn"))
	if code != http.StatusOK || len(ex.got) != 1 || ex.got[0] != (console.Lookup{Kind: console.KindIP, Value: "203.0.113.9", App: "shop/cn"}) {
		t.Fatalf("investigate an address in app shop/cn: %d, explained %+v", code, ex.got)
	}
	h.mu.Lock()
	if last := h.looked[len(h.looked)-1]; last.App != "" {
		t.Errorf("the history was asked for app %q, want every app's", last.App)
	}
	h.mu.Unlock()
	if !strings.Contains(body, `value="shop/cn"`) || !strings.Contains(body, `name="back" value="/console/investigate?kind=ip&amp;value=203.0.113.9&amp;app=shop%2Fcn"`) {
		t.Errorf("the app is not kept in the form or the way back:\n%s", body)
	}
	c.Post("/console/investigate", url.Values{"csrf": {csrf}, "kind": {"phone"}, "value": {"13800138000"}, "app": {"美团外卖"}})
	if last := ex.got[len(ex.got)-1]; last.Kind != console.KindPhone || last.App != "美团外卖" {
		t.Errorf("a number in app 美团外卖 explained as %+v", last)
	}
	if _, _, hd := c.Get("/console/investigate?kind=phone&value=13800138000&app=a1"); !strings.HasSuffix(hd.Get("Location"), "&app=a1") {
		t.Errorf("a number's redirect to its hash drops the app: %s", hd.Get("Location"))
	}
	n := len(ex.got)
	code, body, _ = c.Get("/console/investigate?kind=ip&value=203.0.113.9&app=a%01b")
	if code != http.StatusBadRequest || !strings.Contains(body, `id="err-app"`) || len(ex.got) != n {
		t.Errorf("an app that is no app id: %d, error next to app %v, explained %d times more", code, strings.Contains(body, `id="err-app"`), len(ex.got)-n)
	}
}

// The overview's app filter takes every app id the API takes (schemas.CheckID), as sent: the
// console listed "shop/cn" and "美团外卖" among its apps (their keys scored and published), and
// picking either answered "app: 1–64 letters, digits, _ . : or -" over every app's figures; and an
// app " a1" was filtered as "a1", another app's figures under its name. What no app id can be
// (a control character, over 64 bytes, blank) is still refused next to the field.
func TestOverviewAppFilterTakesEveryAppID(t *testing.T) {
	h := &countingHistory{}
	c := newServer(t, console.Deps{History: h, CacheFor: -1})
	c.Login("alice", "a-secret")
	for _, app := range []string{"shop/cn", "美团外卖", "app a", " a1", "a+b@c"} {
		_, body, _ := c.Get("/console/overview?app=" + url.QueryEscape(app))
		if strings.Contains(body, `id="err-app"`) {
			t.Errorf("app=%q: refused, though the API takes it as an app_id", app)
		}
		h.mu.Lock()
		got := h.filters[len(h.filters)-1].App
		h.mu.Unlock()
		if got != app {
			t.Errorf("app=%q: the history was asked for app %q", app, got)
		}
	}
	// An app none of the listed ones (countingHistory lists a1) is said to be so: "a1 " typed
	// with a space is taken as written, and shows no figures.
	if _, body, _ := c.Get("/console/overview?app=" + url.QueryEscape("a1 ")); !strings.Contains(body, `id="app-unlisted"`) {
		t.Error(`app "a1 ": not said to be none of the apps`)
	}
	if _, body, _ := c.Get("/console/overview?app=a1"); strings.Contains(body, `id="app-unlisted"`) {
		t.Error("app a1, listed: said to be none of the apps")
	}
	// With more apps than the list holds, an app past its end was said to have no scored events.
	many := make([]string, console.MaxApps)
	for i := range many {
		many[i] = fmt.Sprintf("app%04d", i)
	}
	h.mu.Lock()
	h.apps = many
	h.mu.Unlock()
	if _, body, _ := c.Get("/console/overview?app=zz-past-the-list"); strings.Contains(body, `id="app-unlisted"`) || !strings.Contains(body, `id="apps-cut"`) {
		t.Error("an app past a full list: said to be none of the apps, or the cut list not said to be cut")
	}
	h.mu.Lock()
	h.apps = nil
	h.mu.Unlock()
	for _, app := range []string{"a\x01b", strings.Repeat("a", 65), "\u200b", "a\xffb"} {
		_, body, _ := c.Get("/console/overview?app=" + url.QueryEscape(app))
		if !strings.Contains(body, `id="err-app"`) {
			t.Errorf("app=%q: no error next to app", app)
		}
		h.mu.Lock()
		got := h.filters[len(h.filters)-1].App
		h.mu.Unlock()
		if got != "" {
			t.Errorf("app=%q: the history was asked for app %q, want every app", app, got)
		}
	}
}

// gapHistory has scores in the first and fourth hour of the range and one tag in the fourth.
type gapHistory struct{ countingHistory }

func (h *gapHistory) Overview(_ context.Context, f console.Filter) (console.Overview, error) {
	h3 := f.From.Add(3 * time.Hour)
	return console.Overview{
		Scores: []console.HourScores{{Hour: f.From, S0: 5, Events: 5}, {Hour: h3, S0: 1, S900: 2, Events: 3}},
		Tags:   []console.TagHour{{Hour: h3, Tag: "phones_per_ip", Events: 2}},
	}, nil
}

// The charts span every hour of the range: an hour without events is a zero, not a line drawn
// from the hour before to the hour after, and one hour of tags is not a chart of a lone point.
func TestOverviewChartsSpanTheRange(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	c := newServer(t, console.Deps{History: &gapHistory{}, Now: func() time.Time { return now }})
	c.Login("alice", "a-secret")
	_, body, _ := c.Get("/console/overview?range=6h")
	to := now.Truncate(time.Hour).Add(time.Hour)
	var want []int64
	for h := to.Add(-6 * time.Hour); h.Before(to); h = h.Add(time.Hour) {
		want = append(want, h.Unix())
	}
	chart := func(id string) (x []int64, series [][]int64) {
		t.Helper()
		_, rest, ok := strings.Cut(body, `id="`+id+`">`)
		js, _, ok2 := strings.Cut(rest, "</script>")
		var d struct {
			X      []int64   `json:"x"`
			Series [][]int64 `json:"series"`
		}
		if !ok || !ok2 || json.Unmarshal([]byte(js), &d) != nil {
			t.Fatalf("no chart %s in the page", id)
		}
		return d.X, d.Series
	}
	x, s := chart("chart-scores")
	if !slices.Equal(x, want) {
		t.Fatalf("score chart hours %v, want the range's six hours %v", x, want)
	}
	if !slices.Equal(s[0], []int64{5, 0, 0, 1, 0, 0}) || !slices.Equal(s[3], []int64{0, 0, 0, 2, 0, 0}) {
		t.Errorf("score chart series %v: the empty hours must be zeros", s)
	}
	x, s = chart("chart-tags")
	if !slices.Equal(x, want) || len(s) != 1 || !slices.Equal(s[0], []int64{0, 0, 0, 2, 0, 0}) {
		t.Errorf("tag chart %v %v: one tag in one hour, drawn over the range", x, s)
	}
}

// A logout ends the session on every node sharing the state, not only on the node that served it:
// a copy of the cookie (a stolen one, or a second tab behind the load balancer) stops working on
// the other node too. Another admin's session there is untouched.
func TestLogoutEndsTheSessionOnEveryNode(t *testing.T) {
	state := console.NewMemoryState()
	a := newServer(t, console.Deps{State: state, Node: "node-a"})
	b := newServer(t, console.Deps{State: state, Node: "node-b"})
	csrf := a.Login("alice", "a-secret")
	ua, _ := url.Parse(a.Base + "/console/")
	ub, _ := url.Parse(b.Base + "/console/")
	onB := b.Fork()
	onB.HTTP.Jar.SetCookies(ub, a.HTTP.Jar.Cookies(ua))
	if code, _, _ := onB.Get("/console/rules"); code != http.StatusOK {
		t.Fatalf("alice's session on the other node: %d, want 200", code)
	}
	bob := b.Fork()
	bob.Login("bob", "b-secret")
	if code, _, _ := a.Post("/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _, h := onB.Get("/console/rules"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login") {
		t.Errorf("alice's cookie on the other node after her logout: %d %s, want a redirect to the login", code, h.Get("Location"))
	}
	if code, _, _ := onB.Get("/console/login"); code != http.StatusOK {
		t.Errorf("the login page for the ended session: %d, want the form", code)
	}
	if code, _, _ := bob.Get("/console/rules"); code != http.StatusOK {
		t.Errorf("bob's session after alice's logout: %d, want 200", code)
	}
}

// failingState is a shared state that cannot be read or written (ClickHouse away).
type failingState struct{}

func (failingState) Put(context.Context, console.Item) error { return fmt.Errorf("clickhouse away") }
func (failingState) Get(context.Context, string, string) (console.Item, bool, error) {
	return console.Item{}, false, fmt.Errorf("clickhouse away")
}
func (failingState) List(context.Context, string) ([]console.Item, error) {
	return nil, fmt.Errorf("clickhouse away")
}

// While the shared state cannot be read, a session stands (the risk team keeps its console during
// the outage), and the failed check is logged once a minute, not once per request.
func TestSessionStandsWhileTheSharedStateIsAway(t *testing.T) {
	var buf syncbuf.Buffer
	s, err := console.New(console.Deps{Admins: map[string]string{"alice": "a-secret"}, State: failingState{}},
		slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	c := consoletest.New(t, ts.URL, ts.Client())
	c.Login("alice", "a-secret")
	for range 5 {
		if code, _, _ := c.Get("/console/lists"); code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Fatalf("a page with the shared state away: %d, want the page (the session stands)", code)
		}
	}
	if n := strings.Count(buf.String(), "could not check whether sessions ended"); n != 1 {
		t.Errorf("%d warnings for 5 requests, want 1:\n%s", n, buf.String())
	}
}

// rulesWithHistory keeps the audit trail (console.LoadHistory).
type rulesWithHistory struct {
	fakeRules
	loads []console.Version
}

func (f *rulesWithHistory) Loads(context.Context) ([]console.Version, error) { return f.loads, nil }

// The rules page lists every load of the audit trail — a version loaded twice twice, with who —
// where Versions shows each version's latest load only; without a trail there is no History.
func TestRulesPageShowsEveryLoad(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	rules := &rulesWithHistory{
		fakeRules: fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1"}},
		loads: []console.Version{
			{Version: "00000000000000a1", Name: "p", LoadedBy: "cli:root@n1", Source: "rollback", LoadedAt: at.Add(2 * time.Minute)},
			{Version: "00000000000000a2", Name: "p", LoadedBy: "api:bob@n2", Source: "api", LoadedAt: at.Add(time.Minute)},
			{Version: "00000000000000a1", Name: "p", LoadedBy: "console:alice@n1", Source: "console", LoadedAt: at},
		},
	}
	c := newServer(t, console.Deps{Rules: rules})
	c.Login("alice", "a-secret")
	_, body, _ := c.Get("/console/rules")
	i := strings.Index(body, `id="loads"`)
	if i < 0 {
		t.Fatal("no History on the rules page")
	}
	hist := body[i:]
	a, b, r := strings.Index(hist, "cli:root@n1"), strings.Index(hist, "api:bob@n2"), strings.Index(hist, "console:alice@n1")
	if a < 0 || b < 0 || r < 0 || !(a < b && b < r) || strings.Count(hist, ">00000000000000a1</a>") != 2 {
		t.Errorf("History does not list the three loads newest first:\n%s", hist)
	}
	plain := newServer(t, console.Deps{Rules: &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1"}}})
	plain.Login("alice", "a-secret")
	if _, body, _ := plain.Get("/console/rules"); strings.Contains(body, `id="loads"`) {
		t.Error("History shown without an audit trail")
	}
}

// A draft edited while another admin promoted is not promoted over their pack unseen: the page
// carries the live version it showed, a promotion from an older one is refused (409) naming both,
// and the page shown then carries the new live version, so promoting again goes through.
func TestPromoteOverAPackPromotedMeanwhile(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a2", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "base": {"00000000000000a1"}, "draft": {"pack: p\nrules: [mine]\n"}})
	if code != http.StatusConflict || !strings.Contains(body, "00000000000000a1") || !strings.Contains(body, "the live one is now 00000000000000a2") || len(rules.promoted) != 0 {
		t.Fatalf("promote from an older live version: %d, promoted %v\n%s", code, rules.promoted, body)
	}
	if !strings.Contains(body, `name="base" value="00000000000000a2"`) {
		t.Fatal("the page after the refusal does not carry the new live version")
	}
	code, _, _ = c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "base": {"00000000000000a2"}, "draft": {"pack: p\nrules: [mine]\n"}})
	if code != http.StatusSeeOther || len(rules.promoted) != 1 {
		t.Fatalf("promote from the live version: %d, promoted %v", code, rules.promoted)
	}
}

// refusingRules refuses every promotion as invalid (a pack failing the pack's tests).
type refusingRules struct{ fakeRules }

func (f *refusingRules) Promote(context.Context, []byte, string, string) (console.PackInfo, error) {
	return console.PackInfo{}, fmt.Errorf("%w: rule pack rejected: 1 of the pack's 3 tests fail: tests.yaml:7: test \"t\": score: got 0, want 300", console.ErrInvalid)
}

// An approval of a pack refused when it is promoted (it fails the tests now) answers 400 with
// the reason, not 503 as if a part were away, and the request stays listed.
func TestApprovalOfARefusedPack(t *testing.T) {
	rules := &refusingRules{fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrfA := alice.Login("alice", "a-secret")
	alice.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"promote"}, "draft": {"pack: p\nrules: []\n"}})
	_, body, _ := alice.Get("/console/rules")
	m := pendingLink(t, body, "the request is not listed")
	bob := alice.Fork()
	csrfB := bob.Login("bob", "b-secret")
	code, body, _ := bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "tests.yaml:7") {
		t.Errorf("approval of a refused pack: %d\n%s", code, body)
	}
	if code, _, _ := bob.Get(m[1]); code != http.StatusOK {
		t.Errorf("the refused request is gone: %d", code)
	}
}

// rollbackRecorder records the rollbacks asked for.
type rollbackRecorder struct {
	fakeRules
	rolledBack []string
}

func (f *rollbackRecorder) Rollback(_ context.Context, v, who, _ string) (console.PackInfo, error) {
	f.rolledBack = append(f.rolledBack, v)
	return console.PackInfo{Version: v}, nil
}

// A rollback clicked on a rules page shown before another admin's promotion does not undo that
// promotion unseen: it is refused naming the new live version; from a current page it goes through.
func TestRollbackFromAStalePage(t *testing.T) {
	rules := &rollbackRecorder{fakeRules: fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a2"}}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	if _, body, _ := c.Get("/console/rules"); !strings.Contains(body, `name="base" value="00000000000000a2"`) {
		t.Fatal("the rollback form does not carry the live version")
	}
	code, body, _ := c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000a1"}, "base": {"00000000000000b7"}, "confirm": {"yes"}})
	if code != http.StatusConflict || len(rules.rolledBack) != 0 {
		t.Fatalf("rollback from a stale page: %d, rolled back %v", code, rules.rolledBack)
	}
	if !strings.Contains(body, "Not rolled back") || !strings.Contains(body, "it is now 00000000000000a2") {
		t.Errorf("no word of the refused rollback:\n%s", body)
	}
	if code, body, _ := c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000a1"}, "base": {"13912345678"}}); code != http.StatusBadRequest || strings.Contains(body, "5678") || len(rules.rolledBack) != 0 {
		t.Fatalf("rollback from a page naming no version: %d, rolled back %v", code, rules.rolledBack)
	}
	c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000a1"}, "base": {"00000000000000a2"}, "confirm": {"yes"}})
	if len(rules.rolledBack) != 1 {
		t.Fatalf("rollback from a current page: rolled back %v", rules.rolledBack)
	}
}

// One click on a version's "Roll back to this" loaded it on every node. The click now shows what
// the rollback changes (the live pack against the version) and nothing is loaded until its
// button is pressed; that button sends the same version and base.
func TestRollbackIsConfirmedOnAPageShowingWhatChanges(t *testing.T) {
	rules := &rollbackRecorder{fakeRules: fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a2", Content: []byte("pack: p\nrules: [b]\n")}}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000a1"}, "base": {"00000000000000a2"}})
	if code != http.StatusOK || len(rules.rolledBack) != 0 {
		t.Fatalf("the rollback button: %d, rolled back %v; want a page asking to confirm, nothing loaded", code, rules.rolledBack)
	}
	for _, want := range []string{`id="confirm-rollback"`, `name="confirm" value="yes"`, `name="version" value="00000000000000a1"`, `name="base" value="00000000000000a2"`, "- rules: [b]", "&#43; rules: [a]", `href="/console/rules"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the confirmation page lacks %q:\n%s", want, body)
		}
	}
	if code, body, _ := c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000f0"}, "base": {"00000000000000a2"}}); code != http.StatusNotFound || !strings.Contains(body, "no recorded version 00000000000000f0") {
		t.Errorf("confirming a rollback to a version never recorded: %d\n%s", code, body)
	}
	if code, _, _ := c.Post("/console/rules/rollback", url.Values{"version": {"00000000000000a1"}, "base": {"00000000000000a2"}, "confirm": {"yes"}}); code != http.StatusForbidden || len(rules.rolledBack) != 0 {
		t.Fatalf("a confirmation without the CSRF token: %d, rolled back %v", code, rules.rolledBack)
	}
	code, _, h := c.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000a1"}, "base": {"00000000000000a2"}, "confirm": {"yes"}})
	if code != http.StatusSeeOther || len(rules.rolledBack) != 1 || rules.rolledBack[0] != "00000000000000a1" {
		t.Fatalf("the confirmation: %d → %s, rolled back %v", code, h.Get("Location"), rules.rolledBack)
	}
}

// A promotion request approved after another pack went live would undo that pack unseen (the
// draft was edited from the one before): the approval is refused naming both versions, and a
// request from a draft page shown before that promotion is not made at all.
func TestApprovalOfARequestOvertakenByAnotherPromotion(t *testing.T) {
	rules, alice, csrfA, m := alicesPromotionRequest(t)
	// Meanwhile another pack goes live (another request approved, a PUT, a rollback).
	rules.mu.Lock()
	rules.live = console.PackInfo{Name: "p", Version: "00000000000000c3", Content: []byte("pack: p\nrules: [carols]\n")}
	rules.mu.Unlock()
	bob := alice.Fork()
	csrfB := bob.Login("bob", "b-secret")
	if _, body, _ := bob.Get(m[1]); strings.Contains(body, `id="approve"`) || !strings.Contains(body, "the live one is now 00000000000000c3") {
		t.Errorf("the overtaken request is offered for approval:\n%s", body)
	}
	code, body, _ := bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
	if code != http.StatusConflict || !strings.Contains(body, "version 00000000000000a1") || !strings.Contains(body, "the live one is now 00000000000000c3") || len(rules.promoted) != 0 {
		t.Fatalf("approval of an overtaken request: %d, promoted %v\n%s", code, rules.promoted, body)
	}
	// A request from a draft page that showed the older live version is refused as a promotion is.
	code, body, _ = alice.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"promote"}, "base": {"00000000000000a1"}, "draft": {"pack: p\nrules: [alices]\n"}})
	if code != http.StatusConflict || !strings.Contains(body, "the live one is now 00000000000000c3") {
		t.Errorf("request from a stale draft page: %d\n%s", code, body)
	}
	if _, body, _ := alice.Get("/console/rules"); len(regexp.MustCompile(`href="/console/rules/pending/`).FindAllString(body, -1)) != 1 {
		t.Error("a request from a stale draft page was listed")
	}
}

// A request whose version is live already (its approval promoted it and the request's removal
// failed, or the same pack went live another way) is closed by an approval, promoting nothing: it
// was refused as "the live pack changed since … the live one is now <its own version>".
func TestApprovalOfARequestAlreadyLive(t *testing.T) {
	rules, alice, _, m := alicesPromotionRequest(t)
	_, body, _ := alice.Get(m[1])
	v := regexp.MustCompile(`Promotion of ([0-9a-f]{16})`).FindStringSubmatch(body)
	if v == nil {
		t.Fatalf("the request's page names no version:\n%s", body)
	}
	rules.mu.Lock()
	rules.live = console.PackInfo{Name: "p", Version: v[1], Content: []byte("pack: p\nrules: [alices]\n")}
	rules.mu.Unlock()
	bob := alice.Fork()
	csrfB := bob.Login("bob", "b-secret")
	if _, body, _ := bob.Get(m[1]); strings.Contains(body, "the live one is now") || !strings.Contains(body, "is live already") {
		t.Errorf("the request's page, its version live:\n%s", body)
	}
	code, body, h := bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
	if code != http.StatusSeeOther || len(rules.promoted) != 0 {
		t.Fatalf("approval of a request already live: %d, promoted %v\n%s", code, rules.promoted, body)
	}
	_, body, _ = bob.Get(h.Get("Location"))
	if !strings.Contains(body, "is live already: nothing to promote, the request is closed") || strings.Contains(body, "/console/rules/pending/") {
		t.Errorf("after closing the request:\n%s", body)
	}
}

// With two admins a promotion request runs the pack's tests first: one failing them is not asked
// (its approval would be refused), the failures are shown as the tests action shows them.
func TestPromotionRequestOfAPackFailingItsTests(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrf := alice.Login("alice", "a-secret")
	code, body, _ := alice.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "base": {"00000000000000a1"}, "draft": {"pack: p\n# fails\n"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "Not requested: 1 of 2 tests fail") || !strings.Contains(body, "FAIL: score 0, want 300") {
		t.Errorf("request of a pack failing its tests: %d\n%s", code, body)
	}
	if _, body, _ := alice.Get("/console/rules"); strings.Contains(body, "/console/rules/pending/") {
		t.Error("a pack failing its tests was listed for approval")
	}
}

// A form sent after the session ended (8 hours, a logout elsewhere) comes back to the login form
// saying nothing was done, and a draft sent with it is given back to copy; it was a plain-text
// "log in first" and the pack being edited was lost. A page elsewhere posting to the console
// gets the plain answer: it cannot make the console show its text.
func TestSessionEndedMidEditGivesTheDraftBack(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	if code, _, _ := c.Post("/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	draft := "pack: p\nrules:\n  - id: new_rule # <b>an hour of work</b>\n"
	code, body, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"lint"}, "base": {"00000000000000a1"}, "draft": {draft}})
	if code != http.StatusUnauthorized || !strings.Contains(body, `id="login-form"`) || !strings.Contains(body, "your draft was not saved") ||
		!strings.Contains(body, `readonly spellcheck="false">pack: p
rules:
  - id: new_rule # &lt;b&gt;an hour of work&lt;/b&gt;
</textarea>`) || !strings.Contains(body, `name="next" value="/console/rules/draft"`) {
		t.Errorf("draft sent after the session ended: %d\n%s", code, body)
	}
	// The backtest form sends the editor's draft too.
	if code, body, _ := c.Post("/console/backtests", url.Values{"csrf": {csrf}, "hours": {"3"}, "draft": {draft}}); code != http.StatusUnauthorized || !strings.Contains(body, "new_rule # &lt;b&gt;an hour of work") {
		t.Errorf("backtest sent after the session ended: %d\n%s", code, body)
	}
	if code, body, _ := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.1"}, "why": {"x"}}); code != http.StatusUnauthorized || !strings.Contains(body, "what you sent was not done") {
		t.Errorf("list entry sent after the session ended: %d\n%s", code, body)
	}
	// A logout from a page whose session ended is done: back to the login.
	if code, _, h := c.Post("/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Errorf("logout after the session ended: %d %s", code, h.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodPost, c.Base+"/console/rules/draft", strings.NewReader(url.Values{"draft": {"log in at evil.example"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), "evil.example") {
		t.Errorf("cross-site post: %d %s", resp.StatusCode, b)
	}
}

// With ClickHouse away the rules page names each part once ("promotion requests: promotion
// requests: clickhouse away" before).
func TestRulesPageWithTheSharedStateAway(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	s, err := console.New(console.Deps{Admins: map[string]string{"alice": "a-secret"}, State: failingState{}, Rules: rules, Approvals: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	c := consoletest.New(t, ts.URL, ts.Client())
	c.Login("alice", "a-secret")
	_, body, _ := c.Get("/console/rules")
	if !strings.Contains(body, ">promotion requests: clickhouse away<") {
		t.Errorf("the rules page does not say the requests are not available, once:\n%s", body)
	}
}

// recordingBacktest records the packs it was asked to backtest.
type recordingBacktest struct {
	mu    sync.Mutex
	packs []string
}

func (b *recordingBacktest) Backtest(_ context.Context, draft []byte, from, to time.Time, _ func(backtest.Progress)) (*backtest.Report, error) {
	b.mu.Lock()
	b.packs = append(b.packs, string(draft))
	b.mu.Unlock()
	return &backtest.Report{}, nil
}

// A backtest runs the draft as it is in the editor (the page sends it) and saves it; it ran the
// draft saved by the last lint, and an edit made since was not backtested (with no saved draft,
// the live pack against itself: no change at all).
func TestBacktestRunsTheDraftInTheEditor(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	bt := &recordingBacktest{}
	c := newServer(t, console.Deps{Rules: rules, Backtest: bt})
	csrf := c.Login("alice", "a-secret")
	c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"lint"}, "draft": {"pack: p\nrules: [linted]\n"}})
	code, _, h := c.Post("/console/backtests", url.Values{"csrf": {csrf}, "hours": {"2"}, "draft": {"pack: p\r\nrules: [edited]\r\n"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/backtests/") {
		t.Fatalf("backtest: %d %s", code, h.Get("Location"))
	}
	for range 500 { // the run starts in the background
		bt.mu.Lock()
		n := len(bt.packs)
		bt.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	bt.mu.Lock()
	packs := bt.packs
	bt.mu.Unlock()
	if len(packs) != 1 || packs[0] != "pack: p\nrules: [edited]\n" {
		t.Errorf("backtested %q, want the draft sent", packs)
	}
	if _, body, _ := c.Get("/console/rules/draft"); !strings.Contains(body, "rules: [edited]\n</textarea>") {
		t.Error("the backtested draft is not saved")
	}
	// The page's script sends the editor's text with the backtest form.
	code, js, _ := c.Get("/console/static/console.js")
	if code != http.StatusOK || !strings.Contains(js, `getElementById("backtest-form")`) || !strings.Contains(js, `field("draft", editor.value)`) {
		t.Error("console.js does not send the editor's draft with the backtest form")
	}
}

// A draft keeps the live version it was edited from: after another admin's promotion its page
// still carries that version (lint and tests re-rendered it with the new live one, and a reopened
// draft took the live one too, so the promotion that followed undid theirs unseen), says so, and
// its promotion is refused.
func TestDraftRemembersTheVersionItWasEditedFrom(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	if _, body, _ := c.Get("/console/rules/draft"); !strings.Contains(body, `name="base" value="00000000000000a1"`) {
		t.Fatal("the draft page does not carry the live version")
	}
	mine := url.Values{"csrf": {csrf}, "action": {"lint"}, "base": {"00000000000000a1"}, "draft": {"pack: p\nrules: [mine]\n"}}
	c.Post("/console/rules/draft", mine)
	// Another admin promotes meanwhile.
	rules.mu.Lock()
	rules.live = console.PackInfo{Name: "p", Version: "00000000000000c3", Content: []byte("pack: p\nrules: [carols]\n")}
	rules.mu.Unlock()
	for _, action := range []string{"lint", "test"} {
		mine.Set("action", action)
		if _, body, _ := c.Post("/console/rules/draft", mine); !strings.Contains(body, `name="base" value="00000000000000a1"`) {
			t.Errorf("after %s the page carries another version than the draft's", action)
		}
	}
	_, body, _ := c.Get("/console/rules/draft")
	if !strings.Contains(body, `name="base" value="00000000000000a1"`) || !strings.Contains(body, "Your draft was edited from version 00000000000000a1; the live pack is now 00000000000000c3") {
		t.Errorf("the reopened draft does not carry or say the version it was edited from:\n%s", body)
	}
	mine.Set("action", "promote")
	if code, _, _ := c.Post("/console/rules/draft", mine); code != http.StatusConflict || len(rules.promoted) != 0 {
		t.Errorf("promotion of a draft edited before another promotion: %d, promoted %v", code, rules.promoted)
	}
}

// untestedRules has no tests beside its pack (cmd/riskflow: no tests.yaml next to scoring.rules).
type untestedRules struct{ fakeRules }

func (f *untestedRules) Test(context.Context, []byte) ([]console.TestResult, error) {
	return nil, fmt.Errorf("%w: no tests.yaml next to /etc/riskflow/rules.yaml", console.ErrNotAvailable)
}

// A pack without tests is asked for as its promotion would load it: without tests.
func TestPromotionRequestOfAPackWithoutTests(t *testing.T) {
	rules := &untestedRules{fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrf := alice.Login("alice", "a-secret")
	code, body, h := alice.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "draft": {"pack: p\nrules: []\n"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "requested+by+alice") {
		t.Errorf("request of a pack without tests: %d %s\n%s", code, h.Get("Location"), body)
	}
}

// bidiHistory's attempts and decisions carry ids with formatting characters, as apps can store.
type bidiHistory struct{ countingHistory }

func (h *bidiHistory) Activity(context.Context, console.Lookup, int) (console.Activity, error) {
	return console.Activity{Attempts: []console.Attempt{{AppID: "a1\u200b", EventID: "ev-odd\u202eexe.txt", Device: "dev\u2066x", ErrorCode: "E\u202e1", Score: 300}},
		Decisions: []console.Decision{{AppID: "a1", DecisionID: "d\u202e-7", Device: "dev\u202ey", Score: 600}}}, nil
}

// Ids apps stored with formatting characters are shown with them as \u escapes: an event id
// "ev-odd<U+202E>exe.txt" showed as "ev-oddtxt.exe", and in a backtest's examples (one cell) it
// reversed the ids after it.
func TestInvestigateShowsFormattingCharacters(t *testing.T) {
	c := newServer(t, console.Deps{History: &bidiHistory{}, Lists: &fakeLists{}})
	c.Login("alice", "a-secret")
	_, body, _ := c.Get("/console/investigate?kind=ip&value=192.0.2.1")
	for _, want := range []string{`<td class="id">ev-odd\u202Eexe.txt</td>`, `<td class="id">a1\u200B</td>`, `<td class="id">dev\u2066x</td>`, `E\u202E1</td>`, `<td class="id">d\u202E-7</td>`, `<td class="id">dev\u202Ey</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// The label forms send the ids as stored (in attributes, not shown); nothing else has them.
	if !strings.Contains(body, `name="id" value="ev-odd`+"\u202e"+`exe.txt"`) {
		t.Error("the label form does not send the event id as stored")
	}
	shown := regexp.MustCompile(`<input type="hidden"[^>]*>`).ReplaceAllString(body, "")
	if strings.ContainsAny(shown, "\u202e\u200b\u2066") {
		t.Error("a formatting character is shown on the page")
	}
}

// bidiBacktest's examples hold an event id with a right-to-left override.
type bidiBacktest struct{}

func (bidiBacktest) Backtest(context.Context, []byte, time.Time, time.Time, func(backtest.Progress)) (*backtest.Report, error) {
	return &backtest.Report{RunID: "r1", Events: 100, Changed: 2, Transitions: []backtest.Transition{{From: 0, To: 300, Count: 2, Examples: []string{"ev-1\u202e", "ev-2"}}}}, nil
}

// A backtest's examples are one cell: an id with U+202E reversed the ids after it.
func TestBacktestExamplesShowFormattingCharacters(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules, Backtest: bidiBacktest{}})
	csrf := c.Login("alice", "a-secret")
	_, _, h := c.Post("/console/backtests", url.Values{"csrf": {csrf}, "hours": {"1"}})
	var body string
	for range 500 { // the run ends in the background
		_, body, _ = c.Get(h.Get("Location"))
		if strings.Contains(body, `id="transitions"`) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, `<td class="id">ev-1\u202E ev-2</td>`) {
		t.Errorf("examples not shown with the override escaped:\n%s", body)
	}
}

// A device entry (device ids may hold what events carry) and its why are listed with formatting
// characters as \u escapes, and so is the notice after the add.
func TestListsShowFormattingCharacters(t *testing.T) {
	lists := &fakeLists{}
	c := newServer(t, console.Deps{Lists: lists})
	csrf := c.Login("alice", "a-secret")
	code, _, h := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {"device"}, "value": {"dev-\u202eabc"}, "why": {"ring \u202eolleh"}})
	if code != http.StatusSeeOther {
		t.Fatalf("add: %d", code)
	}
	_, body, _ := c.Get(h.Get("Location"))
	for _, want := range []string{`dev-\u202Eabc</td>`, `<td class="id">ring \u202Eolleh</td>`, `block device dev-\u202Eabc.</p>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the lists page lacks %s", want)
		}
	}
	shown := regexp.MustCompile(`<input type="hidden"[^>]*>`).ReplaceAllString(body, "")
	if strings.Contains(shown, "\u202e") {
		t.Error("a formatting character is shown on the page")
	}
}

// With two admins a rollback takes two as well: it is a request another admin approves, which
// then rolls back (the recorded text, untested); one admin alone could bring back any recorded
// version.
func TestRollbackNeedsASecondAdmin(t *testing.T) {
	rules := &rollbackRecorder{fakeRules: fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a2", Content: []byte("pack: p\nrules: [b]\n")}}}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrfA := alice.Login("alice", "a-secret")
	code, _, h := alice.Post("/console/rules/rollback", url.Values{"csrf": {csrfA}, "version": {"00000000000000a1"}, "base": {"00000000000000a2"}, "confirm": {"yes"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Rollback+to+version+00000000000000a1+requested+by+alice") || len(rules.rolledBack) != 0 {
		t.Fatalf("rollback by one admin: %d %s, rolled back %v", code, h.Get("Location"), rules.rolledBack)
	}
	_, body, _ := alice.Get("/console/rules")
	m := pendingLink(t, body, "the rollback is not listed under Waiting for approval")
	bob := alice.Fork()
	csrfB := bob.Login("bob", "b-secret")
	if _, body, _ := bob.Get(m[1]); !strings.Contains(body, "roll back to version <b>00000000000000a1</b>") || !strings.Contains(body, `<span class="ddel">- rules: [b]</span>`) || !strings.Contains(body, `<span class="dadd">&#43; rules: [a]</span>`) {
		t.Errorf("bob does not see the rollback and its diff:\n%s", body)
	}
	code, _, h = bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Rolled+back+to+version+00000000000000a1%2C+asked+by+alice%2C+approved+by+bob") ||
		len(rules.rolledBack) != 1 || rules.rolledBack[0] != "00000000000000a1" || len(rules.promoted) != 0 {
		t.Fatalf("approval: %d %s, rolled back %v, promoted %v", code, h.Get("Location"), rules.rolledBack, rules.promoted)
	}
}

var pendingRE = regexp.MustCompile(`href="(/console/rules/pending/[0-9a-f]+)"`)

// pendingLink finds the link to a request waiting for approval on a rules page (m[1] is its
// path), or ends the test with what, and the page.
// alicesPromotionRequest starts a console needing two approvals, live version 00000000000000a1,
// where alice has asked to promote a draft; m is the request's link (pendingLink).
func alicesPromotionRequest(t *testing.T) (rules *fakeRules, alice *client, csrfA string, m []string) {
	t.Helper()
	rules = &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	alice = newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrfA = alice.Login("alice", "a-secret")
	alice.Post("/console/rules/draft", url.Values{"csrf": {csrfA}, "action": {"promote"}, "base": {"00000000000000a1"}, "draft": {"pack: p\nrules: [alices]\n"}})
	_, body, _ := alice.Get("/console/rules")
	return rules, alice, csrfA, pendingLink(t, body, "the request is not listed")
}

func pendingLink(t *testing.T, body, what string) []string {
	t.Helper()
	m := pendingRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s:\n%s", what, body)
	}
	return m
}

// The console's static files are public (the login page needs its stylesheet), but their
// directory is no page: /console/static/ listed every file to anyone, without a login.
func TestStaticDirectoriesAreNotListed(t *testing.T) {
	c := newServer(t, console.Deps{})
	for _, path := range []string{"/console/static/", "/console/static", "/console/static/./", "/console/static/%2e/", "/console/static//"} {
		code, body, _ := c.Get(path)
		if code == http.StatusOK || strings.Contains(body, "console.js") {
			t.Errorf("GET %s without a login: %d, lists the files:\n%.300s", path, code, body)
		}
	}
	for _, asset := range []string{"/console/static/console.css", "/console/static/console.js", "/console/static/uPlot.iife.min.js"} {
		if code, _, _ := c.Get(asset); code != http.StatusOK {
			t.Errorf("GET %s without a login: %d, want 200 (pages need it before the login)", asset, code)
		}
	}
}

// An upgrade changes console.js under the same name: with every static file cached for an hour,
// browsers ran the old script against the new pages for up to an hour. Pages link each asset at
// its content's version; that URL may be kept for good, any other is revalidated (ETag).
func TestStaticFilesAreLinkedAtTheirVersion(t *testing.T) {
	c := newServer(t, console.Deps{})
	_, login, _ := c.Get("/console/login")
	links := regexp.MustCompile(`(?:href|src)="(/console/static/[^"?]+)\?v=([0-9a-f]{16})"`).FindAllStringSubmatch(login, -1)
	if len(links) < 4 {
		t.Fatalf("the login page links %d static files at a version, want the 4 of the layout:\n%.1500s", len(links), login)
	}
	for _, l := range links {
		path, version := l[1], l[2]
		code, body, h := c.Get(path + "?v=" + version)
		if code != http.StatusOK || body == "" {
			t.Fatalf("GET %s?v=%s: %d", path, version, code)
		}
		if sum := sha256.Sum256([]byte(body)); hex.EncodeToString(sum[:8]) != version {
			t.Errorf("%s: linked at version %s, its content's is %x", path, version, sum[:8])
		}
		if cc := h.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
			t.Errorf("%s at its version: Cache-Control %q, want kept for a year", path, cc)
		}
		for _, other := range []string{path, path + "?v=0000000000000000"} {
			_, _, h := c.Get(other)
			if cc := h.Get("Cache-Control"); cc != "no-cache" || h.Get("ETag") != `"`+version+`"` {
				t.Errorf("%s: Cache-Control %q, ETag %q; want no-cache and %q", other, cc, h.Get("ETag"), `"`+version+`"`)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, c.Base+path, nil)
		req.Header.Set("If-None-Match", `"`+version+`"`)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated with its ETag: %d, want 304", path, resp.StatusCode)
		}
	}
}

// The same admin in two tabs: the second tab's save replaced the first's without a word. Each
// draft page carries the revision of the saved draft it showed; a save, a promotion, a discard or
// a backtest from a page shown before another save is refused (409), says so, shows what differs
// and keeps the page's text in the editor; saving from that page then is a choice.
func TestDraftSavedInAnotherTabIsNotOverwritten(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	state := console.NewMemoryState()
	bt := &recordingBacktest{}
	tab1 := newServer(t, console.Deps{Rules: rules, State: state, Backtest: bt})
	tab1.CSRF = tab1.Login("alice", "a-secret")
	tab2 := tab1.Tab()
	saved := func() string {
		it, ok, err := state.Get(context.Background(), console.ItemDraft, "alice")
		if err != nil || !ok {
			return ""
		}
		return string(it.Body)
	}
	tab1.Get("/console/rules/draft")
	tab2.Get("/console/rules/draft")
	if tab1.DraftRev == "" || tab1.DraftRev != tab2.DraftRev {
		t.Errorf("the draft pages carry no revision of the saved draft (%q, %q)", tab1.DraftRev, tab2.DraftRev)
	}
	if code, _, _ := tab1.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {"pack: p\nrules: [one]\n"}}); code != http.StatusOK {
		t.Fatalf("first tab's save: %d", code)
	}
	code, body, _ := tab2.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {"pack: p\nrules: [two]\n"}})
	if code != http.StatusConflict || saved() != "pack: p\nrules: [one]\n" {
		t.Fatalf("second tab's save over the first's: %d, saved %q", code, saved())
	}
	for _, want := range []string{"Not saved: your saved draft was changed in another tab or window", `<span class="ddel">- rules: [one]</span>`,
		`<span class="dadd">&#43; rules: [two]</span>`, ">pack: p\nrules: [two]\n</textarea>", `id="open-saved"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the refused save's page lacks %q:\n%s", want, body)
		}
	}
	// The other tab's page is stale alike for every other action; nothing is done.
	tab1Stale := tab1.DraftRev
	tab1.Get("/console/rules/draft")
	tab1.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {"pack: p\nrules: [one, more]\n"}})
	for _, action := range []string{"promote", "discard", "test", "save"} {
		code, body, _ := tab2.Post("/console/rules/draft", url.Values{"action": {action}, "rev": {tab1Stale}, "draft": {"pack: p\nrules: [two]\n"}})
		if code != http.StatusConflict || !strings.Contains(body, "your saved draft was changed in another tab") || saved() != "pack: p\nrules: [one, more]\n" || len(rules.promoted) != 0 {
			t.Errorf("%s from a stale page: %d, saved %q, promoted %v", action, code, saved(), rules.promoted)
		}
	}
	code, body, _ = tab2.Post("/console/backtests", url.Values{"hours": {"2"}, "rev": {tab1Stale}, "draft": {"pack: p\nrules: [two]\n"}})
	if code != http.StatusConflict || !strings.Contains(body, "Backtest not started") || saved() != "pack: p\nrules: [one, more]\n" {
		t.Errorf("backtest from a stale page: %d, saved %q", code, saved())
	}
	// "Start a draft from this version" carries no revision: it replaces no saved draft unseen.
	code, body, _ = tab2.Post("/console/rules/draft", url.Values{"action": {"lint"}, "rev": {""}, "draft": {"pack: p\nrules: [a]\n"}})
	if code != http.StatusConflict || saved() != "pack: p\nrules: [one, more]\n" {
		t.Errorf("a draft started from a version over the saved one: %d, saved %q", code, saved())
	}
	// The same text from a stale page loses nothing: saved.
	if code, _, _ := tab2.Post("/console/rules/draft", url.Values{"action": {"lint"}, "rev": {tab1Stale}, "draft": {"pack: p\nrules: [one, more]\n"}}); code != http.StatusOK {
		t.Errorf("the saved text again from a stale page: %d", code)
	}
	// The refused page carries the revision it showed: saving from it is a choice, and works.
	tab2.Post("/console/rules/draft", url.Values{"action": {"lint"}, "rev": {tab1Stale}, "draft": {"pack: p\nrules: [one, two]\n"}})
	if code, _, _ := tab2.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {"pack: p\nrules: [one, two]\n"}}); code != http.StatusOK || saved() != "pack: p\nrules: [one, two]\n" {
		t.Errorf("save of the merged draft: %d, saved %q", code, saved())
	}
	// A discard from an up-to-date page works whatever the editor holds.
	if code, _, _ := tab2.Post("/console/rules/draft", url.Values{"action": {"discard"}, "draft": {"pack: p\nrules: [edited, unsaved]\n"}}); code != http.StatusSeeOther || saved() != "" {
		t.Errorf("discard: %d, saved %q", code, saved())
	}
}

var (
	controlTag = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	attrOf     = func(tag, name string) (string, bool) {
		m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	errSpan = regexp.MustCompile(`<span class="err"[^>]*>`)
)

// checkFormAccessibility checks a page's forms as a screen reader meets them: every control has a
// label (one around it, or one naming its id), and every error next to a field is that field's
// description, the field marked invalid.
func checkFormAccessibility(t *testing.T, page, body string) {
	t.Helper()
	described := map[string]bool{}
	for _, loc := range controlTag.FindAllStringIndex(body, -1) {
		tag := body[loc[0]:loc[1]]
		if typ, _ := attrOf(tag, "type"); typ == "hidden" || typ == "submit" || strings.Contains(tag, " hidden") {
			continue
		}
		id, _ := attrOf(tag, "id")
		before := body[:loc[0]]
		wrapped := strings.LastIndex(before, "<label") > strings.LastIndex(before, "</label>")
		if !wrapped && (id == "" || !strings.Contains(body, `<label for="`+id+`"`)) {
			t.Errorf("%s: control without a label: %s", page, tag)
		}
		inv, _ := attrOf(tag, "aria-invalid")
		desc, hasDesc := attrOf(tag, "aria-describedby")
		if inv == "true" && !hasDesc {
			t.Errorf("%s: %s is invalid without saying why (aria-describedby)", page, tag)
		}
		for _, d := range strings.Fields(desc) {
			if !strings.Contains(body, `id="`+d+`"`) {
				t.Errorf("%s: %s is described by #%s, which is not on the page", page, tag, d)
			}
			if inv == "true" {
				described[d] = true
			}
		}
	}
	for _, tag := range errSpan.FindAllString(body, -1) {
		id, _ := attrOf(tag, "id")
		if id == "" || !described[id] {
			t.Errorf("%s: error %s is tied to no field (aria-describedby of a field marked aria-invalid)", page, tag)
		}
	}
}

// The draft's editor had no label, and an error next to a field was a span nothing pointed at: a
// screen reader said "edit text" and never read the error with the field.
func TestFormsAreLabelledAndErrorsTiedToTheirFields(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules, Lists: &fakeLists{}, Backtest: &recordingBacktest{}})
	_, body, _ := c.Get("/console/login")
	checkFormAccessibility(t, "login", body)
	_, body, _ = c.Post("/console/login", url.Values{"name": {"alice"}, "secret": {""}})
	checkFormAccessibility(t, "login without a secret", body)
	if !strings.Contains(body, `aria-invalid="true"`) {
		t.Error("login without a secret: no field marked invalid")
	}
	c.CSRF = c.Login("alice", "a-secret")
	pages := map[string]string{}
	_, pages["draft"], _ = c.Get("/console/rules/draft")
	if !strings.Contains(pages["draft"], `<label for="draft"`) {
		t.Error("the draft's editor has no label")
	}
	_, pages["draft with problems"], _ = c.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {"pack: p\n  bad: 1\n"}})
	_, pages["empty draft"], _ = c.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {" "}})
	code, body, _ := c.Post("/console/backtests", url.Values{"hours": {"0"}, "draft": {"pack: p\n# not saved yet\n"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="err-hours"`) || !strings.Contains(body, "# not saved yet\n</textarea>") {
		t.Errorf("backtest of 0 hours: %d, the error not next to hours or the editor's draft gone:\n%s", code, body)
	}
	pages["backtest of 0 hours"] = body
	_, pages["lists"], _ = c.Get("/console/lists")
	_, pages["bad list entry"], _ = c.Post("/console/lists", url.Values{"action": {"deny"}, "kind": {"ip"}, "value": {"300.1.1.1"}, "why": {""}})
	_, pages["investigate"], _ = c.Get("/console/investigate")
	_, pages["bad lookup"], _ = c.Get("/console/investigate?kind=ip&value=nope")
	_, pages["overview"], _ = c.Get("/console/overview")
	_, pages["bad overview range"], _ = c.Get("/console/overview?range=custom&from=x&to=y&app=a%01b")
	_, pages["bad overview range name"], _ = c.Get("/console/overview?range=2y")
	for name, body := range pages {
		checkFormAccessibility(t, name, body)
	}
	for _, name := range []string{"draft with problems", "empty draft", "backtest of 0 hours", "bad list entry", "bad lookup", "bad overview range", "bad overview range name"} {
		if !strings.Contains(pages[name], `aria-invalid="true"`) {
			t.Errorf("%s: no field marked invalid", name)
		}
	}
}

// reasonHistory's decision was served with a reason a rule wrote from the event's app_id, which
// events may hold formatting characters in.
type reasonHistory struct{ countingHistory }

func (h *reasonHistory) Activity(context.Context, console.Lookup, int) (console.Activity, error) {
	return console.Activity{Decisions: []console.Decision{{AppID: "a1", DecisionID: "d1", Score: 600,
		Hits: []string{"app_burst (enforce): 40 logins for app a1\u202eexe.txt in 10 min"}}}}, nil
}

type reasonExplain struct{}

func (reasonExplain) Explain(context.Context, console.Lookup) ([]console.Feature, error) {
	return []console.Feature{{Name: "matches now: app_burst", Value: "enforce 600: 40 logins for app a1\u202eexe.txt"}}, nil
}

// Reasons are written from event fields (a rule's "{app_id}", "{error_code}"): shown as served,
// a U+202E in one reversed the rest of the cell, as ids did before they were shown escaped.
func TestReasonsShowFormattingCharacters(t *testing.T) {
	c := newServer(t, console.Deps{History: &reasonHistory{}, Explain: reasonExplain{}, Lists: &fakeLists{}})
	c.Login("alice", "a-secret")
	_, body, _ := c.Get("/console/investigate?kind=ip&value=192.0.2.1")
	for _, want := range []string{`app a1\u202Eexe.txt in 10 min`, `enforce 600: 40 logins for app a1\u202Eexe.txt`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	shown := regexp.MustCompile(`<input type="hidden"[^>]*>`).ReplaceAllString(body, "")
	if strings.Contains(shown, "\u202e") {
		t.Error("a formatting character is shown on the page")
	}
}

// Where a form comes back to after it is done stays on this console: a path that leaves it once
// cleaned ("/console/investigate/../../\evil.com" was sent as "/\evil.com", which browsers read
// as //evil.com) goes to the console's own page instead — as does one with a fragment, whose dot segments http.Redirect resolved
// too ("/console/investigate#/../.." was sent as "/").
func TestRedirectsStayOnTheConsole(t *testing.T) {
	c := newServer(t, console.Deps{Labels: &okLabels{}, Lists: &fakeLists{}})
	offsite := func(loc string) bool {
		u, err := url.Parse(strings.NewReplacer("\\", "/", "\t", "", "\n", "", "\r", "").Replace(loc))
		return err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(path.Clean(u.Path)+"/", "/console/")
	}
	evil := []string{`/console/investigate/../../\evil.com`, "/console/investigate/../../\t/evil.com", "/console/investigate/../..//evil.com",
		`/console/investigate\..\..\evil.com`, "//evil.com/console/investigate", "https://evil.com/console/investigate", "/console/investigate/%2e%2e/%2e%2e/%5cevil.com",
		// http.Redirect cleans a fragment as a path: this was sent as "/" (found by FuzzSafeNext).
		"/console/investigate#/../..", "/console/0#0/../../v1/admin/labels",
		// An escaped slash parts no segment of the path as the redirect cleans it, and a browser
		// reads it: this was sent as "/evil.com" (found by a mutation harness over FuzzSafeNext).
		"/console/investigate%2fx/../..//evil.com", "/console/investigate%2fx/%2e%2e/%2e%2e/evil.com",
		// Cleaned, this was sent as "/console/..%2fevil.com", which read decoded is "/evil.com".
		"/console/investigate%2fx/../..%2fevil.com"}
	c.CSRF = c.Login("alice", "a-secret")
	for _, back := range evil {
		code, _, h := c.Post("/console/investigate/label", url.Values{"app_id": {"a1"}, "target": {"event"}, "id": {"e1"}, "label": {"fraud"}, "back": {back}})
		if code != http.StatusSeeOther || offsite(h.Get("Location")) || !strings.HasPrefix(h.Get("Location"), "/console/investigate") {
			t.Errorf("label with back=%q: %d → %q", back, code, h.Get("Location"))
		}
	}
	for _, next := range evil {
		code, _, h := c.Post("/console/login", url.Values{"name": {"alice"}, "secret": {"a-secret"}, "next": {next}})
		if code != http.StatusSeeOther || offsite(h.Get("Location")) {
			t.Errorf("login with next=%q: %d → %q", next, code, h.Get("Location"))
		}
	}
	// The page it came from is where it goes back to.
	c.CSRF = c.Login("alice", "a-secret") // the logins above replaced the session
	_, _, h := c.Post("/console/investigate/label", url.Values{"app_id": {"a1"}, "target": {"event"}, "id": {"e1"}, "label": {"fraud"}, "back": {"/console/investigate?kind=ip&value=192.0.2.1"}})
	if !strings.HasPrefix(h.Get("Location"), "/console/investigate?kind=ip&value=192.0.2.1&msg=") {
		t.Errorf("label: back to %q", h.Get("Location"))
	}
}

// http.Redirect escapes every byte beyond ASCII, which parts digits of two scripts: next= with
// "13812345678１３８" (fourteen digits, no number) was sent as "13812345678%ef%bc%91…", a number
// in the Location (found by a mutation harness over FuzzSafeNext).
func TestLoginRedirectEscapedHoldsNoNumber(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	for _, next := range []string{"/console/13812345678１３８rules", "/console/investigate?kind=device&value=d13812345678１３８"} {
		code, _, h := c.Post("/console/login", url.Values{"name": {"alice"}, "secret": {"a-secret"}, "next": {next}})
		if loc := h.Get("Location"); code != http.StatusSeeOther || schemas.ContainsPhone(loc) || !strings.HasPrefix(loc, "/console/") {
			t.Errorf("login with next=%q: %d → %q", next, code, loc)
		}
	}
}

type okLabels struct{}

func (okLabels) Mark(context.Context, string, string, string, string, string) error { return nil }

// A link to a number's page opened without a session went to the login page with the number in
// next= (one more URL in history and proxies' logs), and the login form carried it; the number
// is left out: after the login the page asks for it again.
func TestLoginRedirectCarriesNoNumber(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	for _, q := range []string{"kind=phone&value=13800138000", "kind=phone&value=%2B86%20138-0013-8000", "kind=device&value=tel13800138000"} {
		code, _, h := c.Get("/console/investigate?" + q)
		loc, _ := url.QueryUnescape(h.Get("Location"))
		loc, _ = url.QueryUnescape(loc)
		if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/login?next=/console/investigate") || strings.Contains(strings.NewReplacer("-", "", " ", "").Replace(loc), "13800138000") {
			t.Errorf("investigate?%s without a session: %d → %q", q, code, h.Get("Location"))
		}
	}
	_, body, _ := c.Get("/console/login?next=" + url.QueryEscape("/console/investigate?kind=phone&value=13800138000"))
	if strings.Contains(body, "13800138000") || !strings.Contains(body, `name="next" value="/console/investigate"`) {
		t.Error("the login form carries the number in next")
	}
	// After the login: the page, without the number.
	code, _, h := c.Post("/console/login", url.Values{"name": {"alice"}, "secret": {"a-secret"}, "next": {"/console/investigate?kind=phone&value=13800138000"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/investigate" {
		t.Errorf("login with a number in next: %d → %q", code, h.Get("Location"))
	}
}

// slowRules promotes only once released, saying when a promotion started.
type slowRules struct {
	fakeRules
	entered, release chan struct{}
}

func (f *slowRules) Promote(ctx context.Context, draft []byte, who, live string) (console.PackInfo, error) {
	close(f.entered)
	<-f.release
	return f.fakeRules.Promote(ctx, draft, who, live)
}

// A request withdrawn while another admin's approval of it was promoting: the withdrawal said
// "withdrawn" and the pack went live all the same. Decisions on a request are taken one at a
// time: the withdrawal, after the approval, finds the request gone and says so.
func TestWithdrawalDuringAnApproval(t *testing.T) {
	rules := &slowRules{fakeRules: fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}},
		entered: make(chan struct{}), release: make(chan struct{})}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	alice.CSRF = alice.Login("alice", "a-secret")
	alice.Post("/console/rules/draft", url.Values{"action": {"promote"}, "draft": {"pack: p\nrules: []\n"}})
	_, body, _ := alice.Get("/console/rules")
	m := pendingLink(t, body, "the request is not listed")
	bob := alice.Fork()
	bob.CSRF = bob.Login("bob", "b-secret")
	approved := make(chan string)
	go func() {
		_, _, h := bob.Post(m[1], url.Values{"decision": {"approve"}})
		approved <- h.Get("Location")
	}()
	<-rules.entered
	withdrawn := make(chan string)
	go func() {
		_, _, h := alice.Post(m[1], url.Values{"decision": {"withdraw"}})
		withdrawn <- h.Get("Location")
	}()
	var wloc string
	select {
	case wloc = <-withdrawn: // answered while the promotion was under way
		close(rules.release)
	case <-time.After(time.Second): // or waits for it: either way its answer is read below
		close(rules.release)
		wloc = <-withdrawn
	}
	aloc := <-approved
	if !strings.Contains(aloc, "approved+by+bob") || len(rules.promoted) != 1 {
		t.Fatalf("approval: %s, promoted %v", aloc, rules.promoted)
	}
	if strings.Contains(wloc, "withdrawn+by+alice") {
		t.Errorf("the withdrawal said %q of a request that went live", wloc)
	}
}

// barrier lets its waiters through once n of them wait together; a waiter whose context ends
// first gives up with its error.
type barrier struct {
	mu   sync.Mutex
	n    int
	open chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	if b.n--; b.n == 0 {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waited alone: %w", ctx.Err())
	}
}

// gatedRules and gatedState answer only when the rules page's three reads (versions, load history,
// promotion requests) are all in flight.
type gatedRules struct {
	*fakeRules
	b *barrier
}

func (r gatedRules) Versions(ctx context.Context) ([]console.Version, error) {
	if err := r.b.wait(ctx); err != nil {
		return nil, err
	}
	return r.fakeRules.Versions(ctx)
}

func (r gatedRules) Loads(ctx context.Context) ([]console.Version, error) {
	if err := r.b.wait(ctx); err != nil {
		return nil, err
	}
	return r.fakeRules.Versions(ctx)
}

type gatedState struct {
	console.State
	b *barrier
}

func (s gatedState) List(ctx context.Context, kind string) ([]console.Item, error) {
	if err := s.b.wait(ctx); err != nil {
		return nil, err
	}
	return s.State.List(ctx, kind)
}

// The rules page reads its three parts from ClickHouse at once: one after the other, a ClickHouse
// that does not answer held the page for the sum of their timeouts (~20 s measured).
func TestRulesPageReadsItsPartsTogether(t *testing.T) {
	b := newBarrier(3)
	c := newServer(t, console.Deps{Rules: gatedRules{&fakeRules{}, b}, State: gatedState{console.NewMemoryState(), b}})
	c.Login("alice", "a-secret")
	code, body, _ := c.Get("/console/rules")
	if code != http.StatusOK || strings.Contains(body, "waited alone") || !strings.Contains(body, "00000000000000a2") {
		t.Fatalf("GET /console/rules: %d; a part read alone, or the versions are missing:\n%s", code, body)
	}
}

// A device looked up is named in the page's headings and sentences ("Live features of …", "… is
// on no allow or block list."): a device id holding U+202E, which events may carry, reversed the
// console's own sentence after it ("dev‮abc is on no allow or block list." read
// "dev.tsil kcolb ro wolla on no si cba"). It is shown with the override as a \u escape; the
// form's field keeps the id as typed, to look it up again.
func TestInvestigatedDeviceShowsFormattingCharacters(t *testing.T) {
	c := newServer(t, console.Deps{History: &countingHistory{}, Lists: &fakeLists{}})
	c.Login("alice", "a-secret")
	code, body, _ := c.Get("/console/investigate?kind=device&value=" + url.QueryEscape("dev\u202eabc"))
	if code != http.StatusOK {
		t.Fatalf("investigate: %d\n%s", code, body)
	}
	for _, want := range []string{`dev\u202Eabc is on no allow or block list.`, `Live features of dev\u202Eabc</h2>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	shown := regexp.MustCompile(`<input [^>]*>`).ReplaceAllString(body, "")
	if strings.Contains(shown, "\u202e") {
		t.Error("a formatting character is shown on the page")
	}
}

// The lists file is hand-written: its comments are the entries' notes, and a note may name a
// number ("# reported by 13511112222's owner"). The console refuses a number in a note typed in
// its form, but listed the file's notes as written: the number showed in plaintext on the lists
// page and under "On the lists" of every lookup of the entry. Notes (and who) are shown with
// every number masked, whatever its format.
func TestListNotesFromTheFileShowNoNumber(t *testing.T) {
	numbers := []string{"13511112222", "+86 139-4321-8765", "８６１３７９９８８７７６６", "86 136 5555 4444"}
	lists := &fakeLists{entries: []console.ListEntry{
		{ID: "0123456789ab", Action: "block", Kind: console.KindIP, Value: "192.0.2.1", Shown: "192.0.2.1", File: true,
			Why: "reported by " + numbers[0] + "'s owner, call back " + numbers[1] + " or " + numbers[2]},
		{ID: "0123456789ac", Action: "allow", Kind: console.KindIP, Value: "192.0.2.2", Shown: "192.0.2.2", File: true,
			Who: numbers[3], Why: "partner gateway"},
	}}
	c := newServer(t, console.Deps{History: &countingHistory{}, Lists: lists})
	c.Login("alice", "a-secret")
	for _, u := range []string{"/console/lists", "/console/investigate?kind=ip&value=192.0.2.1", "/console/investigate?kind=ip&value=192.0.2.2"} {
		code, body, _ := c.Get(u)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", u, code)
		}
		if !strings.Contains(body, "reported by") && !strings.Contains(body, "partner gateway") {
			t.Errorf("%s does not list the entry", u)
		}
		for _, n := range numbers {
			// Its last digits, as html/template writes them ("+" is "&#43;").
			if tail := string([]rune(n)[len([]rune(n))-4:]); strings.Contains(body, tail) {
				t.Errorf("%s shows the number %s", u, n)
			}
		}
	}
}

// A number in a console URL's path (a link to /console/rules/versions/13800138000, pasted or
// guessed) went on into the login redirect's next=, the login form and the redirect after it:
// a further URL (browser history, proxies' logs) holding it. The login leads to the overview
// instead, and the number is in no further URL or form.
func TestLoginRedirectCarriesNoNumberInThePath(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	for _, p := range []string{"/console/rules/versions/13800138000", "/console/rules/versions/%2B86%20138-0013-8000", "/console/backtests/13800138000", "/console/rules/pending/138%2000138000"} {
		code, _, h := c.Get(p)
		loc := h.Get("Location")
		if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/login") || strings.Contains(loc, "0013") {
			t.Errorf("%s without a session: %d → %q", p, code, loc)
		}
	}
	for _, next := range []string{"/console/rules/versions/13800138000", "/console/x%2B8613800138000"} {
		_, body, _ := c.Get("/console/login?next=" + url.QueryEscape(next))
		if strings.Contains(body, "0013") || strings.Contains(body, "%2B86") {
			t.Errorf("the login form carries the number of next=%s", next)
		}
	}
	code, _, h := c.Post("/console/login", url.Values{"name": {"alice"}, "secret": {"a-secret"}, "next": {"/console/rules/versions/13800138000"}})
	if code != http.StatusSeeOther || strings.Contains(h.Get("Location"), "0013") {
		t.Errorf("login with a number in next's path: %d → %q", code, h.Get("Location"))
	}
}

// A lists page shows its entries a page at a time: with a bulk block list of 20,000 addresses in
// the lists file, the page was 3.7 MB and took Chromium seconds to show, all to add one entry.
// The last page (the console's entries come after the file's) is a click away.
func TestListsPageShowsEntriesAPageAtATime(t *testing.T) {
	lists := &fakeLists{}
	for i := range 450 {
		lists.entries = append(lists.entries, console.ListEntry{ID: fmt.Sprintf("%012x", i), Action: "block", Kind: console.KindIP,
			Value: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Shown: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Why: fmt.Sprintf("bulk %d", i), File: true})
	}
	c := newServer(t, console.Deps{Lists: lists})
	c.Login("alice", "a-secret")
	rows := func(body string) int { return strings.Count(body, `<tr class="act-block">`) }
	for _, tc := range []struct {
		q           string
		rows        int
		first, last string
		prev, next  string
		says        string
	}{
		{"", 200, "bulk 0<", "bulk 199<", "", "/console/lists?page=2", "1–200 of 450"},
		{"?page=2", 200, "bulk 200<", "bulk 399<", "/console/lists?page=1", "/console/lists?page=3", "201–400 of 450"},
		{"?page=3", 50, "bulk 400<", "bulk 449<", "/console/lists?page=2", "", "401–450 of 450"},
		{"?page=9", 50, "bulk 400<", "bulk 449<", "/console/lists?page=2", "", "401–450 of 450"},
		{"?page=x", 200, "bulk 0<", "bulk 199<", "", "/console/lists?page=2", "1–200 of 450"},
	} {
		code, body, _ := c.Get("/console/lists" + tc.q)
		if code != http.StatusOK || rows(body) != tc.rows || !strings.Contains(body, tc.first) || !strings.Contains(body, tc.last) || !strings.Contains(body, tc.says) {
			t.Errorf("lists%s: %d, %d rows (want %d from %q to %q, %q)", tc.q, code, rows(body), tc.rows, tc.first, tc.last, tc.says)
		}
		first, last := "", ""
		if tc.prev != "" {
			first = "/console/lists?page=1"
		}
		if tc.next != "" {
			last = "/console/lists?page=3"
		}
		for rel, want := range map[string]string{"first": first, "prev": tc.prev, "next": tc.next, "last": last} {
			link := regexp.MustCompile(`<a rel="` + rel + `" href="([^"]*)"`).FindStringSubmatch(body)
			if want == "" && link != nil || want != "" && (link == nil || link[1] != want) {
				t.Errorf("lists%s: %s link %v, want %q", tc.q, rel, link, want)
			}
		}
	}
	// Fewer entries than a page: no page links.
	lists.entries = lists.entries[:3]
	if _, body, _ := c.Get("/console/lists"); rows(body) != 3 || strings.Contains(body, `rel="next"`) {
		t.Errorf("3 entries: %d rows", rows(body))
	}
}

// A browser keeps what is typed into a form's text fields for suggestions (Chromium: the profile's
// "Web Data" autofill table), unless the field says autocomplete="off": every number typed into
// the investigate and lists forms was stored there in plaintext, and offered back in any "value"
// field. The fields that take a number tell the browser not to keep what is typed.
func TestNumberFieldsAreNotRememberedByTheBrowser(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}, History: &countingHistory{}})
	c.Login("alice", "a-secret")
	field := regexp.MustCompile(`<input name="value" id="(inv|list)-value"[^>]*>`)
	for _, u := range []string{"/console/investigate", "/console/lists"} {
		_, body, _ := c.Get(u)
		m := field.FindString(body)
		if m == "" || !strings.Contains(m, `autocomplete="off"`) {
			t.Errorf("%s: the value field %q lets the browser remember what is typed", u, m)
		}
	}
}

// busyHistory holds n attempts and n decisions of the key, and answers at most limit of each,
// newest first, as ClickHouse's lookup does.
type busyHistory struct {
	countingHistory
	n int
}

func (h *busyHistory) Activity(_ context.Context, _ console.Lookup, limit int) (console.Activity, error) {
	var act console.Activity
	for i := range min(h.n, limit) {
		act.Attempts = append(act.Attempts, console.Attempt{AppID: "a1", EventID: fmt.Sprintf("ev-%d", i), Score: 300})
		act.Decisions = append(act.Decisions, console.Decision{AppID: "a1", DecisionID: fmt.Sprintf("d-%d", i), Score: 300})
	}
	return act, nil
}

// A farm's address has thousands of attempts: the page showed the newest 100 of each list as if
// they were all of them. It says when a list is cut, and where the rest is.
func TestInvestigateSaysWhenAListIsCut(t *testing.T) {
	for _, tc := range []struct {
		n    int
		rows int
		cut  bool
	}{{5000, 100, true}, {100, 100, false}, {3, 3, false}} {
		c := newServer(t, console.Deps{History: &busyHistory{n: tc.n}, Lists: &fakeLists{}})
		c.Login("alice", "a-secret")
		_, body, _ := c.Get("/console/investigate?kind=ip&value=192.0.2.1")
		if got := strings.Count(body, `value="event"`); got != tc.rows {
			t.Errorf("%d attempts: %d shown, want %d", tc.n, got, tc.rows)
		}
		if got := strings.Count(body, `value="decision"`); got != tc.rows {
			t.Errorf("%d decisions: %d shown, want %d", tc.n, got, tc.rows)
		}
		for _, id := range []string{"attempts-cut", "decisions-cut"} {
			if cut := strings.Contains(body, `id="`+id+`"`); cut != tc.cut {
				t.Errorf("%d of each: %s said %v, want %v", tc.n, id, cut, tc.cut)
			}
		}
		if tc.cut && !strings.Contains(body, "riskflow lookup --ip 192.0.2.1") {
			t.Errorf("%d of each: the page does not say where the rest is", tc.n)
		}
	}
}

// Failed logins are counted per address and name, as the API counts its failed authentications:
// guesses at bob's secret (or bob's typos) lock bob out, right secret included, and not alice
// behind the same address; names that are no admin's share one bucket of the address, so making
// names up buys no guesses.
func TestFailedLoginsOfOneAdminLockNoOtherAdmin(t *testing.T) {
	c := newServer(t, console.Deps{})
	login := func(name, secret string) int {
		t.Helper()
		code, _, _ := c.Post("/console/login", url.Values{"name": {name}, "secret": {secret}})
		return code
	}
	for i := range 5 {
		login("bob", fmt.Sprintf("guess-%d", i))
	}
	if code := login("bob", "b-secret"); code != http.StatusTooManyRequests {
		t.Errorf("bob after 5 guesses at his secret: %d, want 429", code)
	}
	if code := login("alice", "a-secret"); code != http.StatusSeeOther {
		t.Errorf("alice from the same address after bob's guesses: %d, want her login to work", code)
	}
	for i := range 5 {
		login(fmt.Sprintf("nobody-%d", i), "guess")
	}
	if code := login("nobody-new", "guess"); code != http.StatusTooManyRequests {
		t.Errorf("a sixth made-up name: %d, want 429 (made-up names share one bucket)", code)
	}
}

// Behind a proxy that rewrites Host (nginx's proxy_pass without proxy_set_header Host), the
// browser's Origin names the proxy's site and Host the node: the console's own forms carry
// Sec-Fetch-Site: same-origin, which a page cannot set, and pass; another site's do not, with
// or without an Origin naming the node. Its login was refused as coming from another site.
func TestFormsBehindAProxyThatRewritesHost(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	post := func(path string, form url.Values, origin, site string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.Base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	const proxied = "https://riskflow.example.com" // the proxy's site, not this node's Host
	login := url.Values{"name": {"alice"}, "secret": {"a-secret"}}
	for _, site := range []string{"cross-site", "same-site"} {
		if code, _ := post("/console/login", login, c.Base, site); code != http.StatusBadRequest {
			t.Errorf("login, Sec-Fetch-Site %s, Origin naming the node: %d, want 400", site, code)
		}
	}
	if code, h := post("/console/login", login, proxied, "same-origin"); code != http.StatusSeeOther || h.Get("Location") != "/console/overview" {
		t.Fatalf("the console's own login through the proxy: %d → %s, want 303 → /console/overview", code, h.Get("Location"))
	}
	_, body, _ := c.Get("/console/lists")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the lists page")
	}
	add := url.Values{"csrf": {m[1]}, "action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.9"}, "why": {"through the proxy"}}
	if code, _ := post("/console/lists", add, c.Base, "cross-site"); code != http.StatusForbidden {
		t.Errorf("POST with the token, Sec-Fetch-Site cross-site: %d, want 403", code)
	}
	if code, h := post("/console/lists", add, proxied, "same-origin"); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Added") {
		t.Errorf("the console's own form through the proxy: %d → %s, want 303 → Added", code, h.Get("Location"))
	}
}

// A number typed (or pasted) into the overview's from or to, or sent as its range, is refused next
// to its field and never echoed back: the form gave from and to back as sent, so the page showed
// the number in the field (and a million-byte value whole).
func TestOverviewRangeFieldsDoNotEchoNumbers(t *testing.T) {
	c := newServer(t, console.Deps{History: &countingHistory{}, CacheFor: -1})
	c.Login("alice", "a-secret")
	for _, q := range []string{
		"range=custom&from=13912345678&to=2026-12-05T09:00",
		"range=custom&from=2026-12-05T08:00&to=%2B86%20139%201234%205678",
		"range=13912345678",
		"from=139-1234-5678",
	} {
		code, body, _ := c.Get("/console/overview?" + q)
		if code != http.StatusOK || strings.Contains(body, "5678") {
			t.Errorf("%s: %d, the number echoed: %v", q, code, strings.Contains(body, "5678"))
		}
		if !strings.Contains(body, `class="err"`) {
			t.Errorf("%s: no error next to the field", q)
		}
	}
	huge := strings.Repeat("2", 64<<10)
	if _, body, _ := c.Get("/console/overview?range=custom&to=2026-12-05T09:00&from=" + huge); strings.Contains(body, huge[:1024]) {
		t.Errorf("a 64 KB from= is echoed back whole")
	}
}

// The label forms' back= goes into the redirect after a label (Location, the browser's history,
// a proxy's log): a back= holding a number — a forged form, or a link to a number's lookup — came
// back with the number in it. It comes back to the lookup page without its query, and back= never
// leaves that page.
func TestLabelBackCarriesNoNumber(t *testing.T) {
	lb := &fakeLabels{}
	c := newServer(t, console.Deps{Labels: lb, Lists: &fakeLists{}})
	csrf := c.Login("alice", "a-secret")
	for _, back := range []string{
		"/console/investigate?kind=phone&value=13912345678",
		"/console/investigate?kind=phone&value=%2B86+139+1234+5678",
		"/console/investigate?kind=phone&value=%252B86%2520139%25201234%25205678",
		"/console/investigate?kind=device&value=１３９１２３４５６７８",
	} {
		code, _, h := c.Post("/console/investigate/label", url.Values{"csrf": {csrf}, "app_id": {"a1"}, "target": {"event"}, "id": {"ev-9"}, "label": {"fraud"}, "back": {back}})
		loc := h.Get("Location")
		if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/investigate?msg=") {
			t.Errorf("back=%s: %d %s", back, code, loc)
		}
		if u, _ := url.QueryUnescape(loc); strings.Contains(loc, "5678") || strings.Contains(u, "5678") || strings.Contains(u, "５６７８") {
			t.Errorf("back=%s: the number is in the redirect: %s", back, loc)
		}
	}
	for _, back := range []string{"https://evil.example/console/investigate", "//evil.example/console/investigate", "/console/investigate/../../x", "/\\evil.example", "/console/rules"} {
		_, _, h := c.Post("/console/investigate/label", url.Values{"csrf": {csrf}, "app_id": {"a1"}, "target": {"event"}, "id": {"ev-9"}, "label": {"fraud"}, "back": {back}})
		if loc := h.Get("Location"); !strings.HasPrefix(loc, "/console/investigate?msg=") {
			t.Errorf("back=%s: redirected to %s", back, loc)
		}
	}
}

// racingRules is a rule pack service where another admin's rollback to 00000000000000c3 lands
// between the console's check of the live version and its own rollback's swap.
type racingRules struct{ fakeRules }

func (f *racingRules) Rollback(_ context.Context, v, who, live string) (console.PackInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live = console.PackInfo{Name: "p", Version: "00000000000000c3"}
	if live != "" && live != f.live.Version {
		return console.PackInfo{}, fmt.Errorf("%w: the live pack is version %s, not %s", console.ErrStale, f.live.Version, live)
	}
	f.live = console.PackInfo{Name: "p", Version: v}
	return f.live, nil
}

// Two admins roll back at once from pages showing the same live version: the one whose rollback
// is swapped in second gets a 409 naming the version live now, not "Rolled back" over the other's
// (held-out run: two concurrent rollbacks through a node were both answered "Rolled back to …",
// five times out of five; the console checked the live version, then rolled back over any).
func TestConcurrentRollbackLoserIsTold(t *testing.T) {
	for _, approvals := range []int{1, 2} {
		rules := &racingRules{fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a2", Content: []byte("pack: p\nrules: [b]\n")}}}
		alice := newServer(t, console.Deps{Rules: rules, Approvals: approvals})
		csrfA := alice.Login("alice", "a-secret")
		code, body, h := alice.Post("/console/rules/rollback", url.Values{"csrf": {csrfA}, "version": {"00000000000000a1"}, "base": {"00000000000000a2"}, "confirm": {"yes"}})
		if approvals == 2 {
			// A request, approved by bob: the approval is the rollback.
			_, body, _ = alice.Get("/console/rules")
			m := pendingLink(t, body, "the rollback is not listed under Waiting for approval")
			bob := alice.Fork()
			csrfB := bob.Login("bob", "b-secret")
			code, body, h = bob.Post(m[1], url.Values{"csrf": {csrfB}, "decision": {"approve"}})
		}
		if code != http.StatusConflict || !strings.Contains(body, "00000000000000c3") {
			t.Errorf("approvals %d: the rollback that came second: %d %s, want 409 naming 00000000000000c3\n%s", approvals, code, h.Get("Location"), body)
		}
		rules.mu.Lock()
		if rules.live.Version != "00000000000000c3" {
			t.Errorf("approvals %d: live is %s: the other admin's rollback was undone", approvals, rules.live.Version)
		}
		rules.mu.Unlock()
	}
}

// A phone number typed as the admin name (no admin is named by one: the configuration refuses it)
// or carried in next= is not given back by the failed login's form: both came back as sent.
func TestFailedLoginDoesNotEchoNumbers(t *testing.T) {
	c := newServer(t, console.Deps{})
	for _, f := range []url.Values{
		{"name": {"139 1234 5678"}, "secret": {"guess"}},
		{"name": {"alice"}, "secret": {"guess"}, "next": {"/console/investigate?kind=phone&value=13912345678"}},
		{"name": {"１３９１２３４５６７８"}, "secret": {""}},
	} {
		code, body, _ := c.Post("/console/login", f)
		if code == http.StatusSeeOther || strings.Contains(body, "5678") || strings.Contains(body, "５６７８") {
			t.Errorf("failed login %v: %d, the number given back: %v", f, code, strings.Contains(body, "5678") || strings.Contains(body, "５６７８"))
		}
	}
}

// Lint lists the draft's lines with each problem under its line: a line holding a bidirectional
// override (pasted from a chat, and flagged by lint) was listed as is, the rest of it shown
// reversed and the character itself invisible where the caret pointed. It shows as \u202E there, as
// the diffs show it; the editor keeps the text as typed.
func TestLintListingShowsFormattingCharacters(t *testing.T) {
	c := newServer(t, console.Deps{Rules: &fakeRules{live: console.PackInfo{Content: []byte("pack: p\n")}}})
	csrf := c.Login("alice", "a-secret")
	_, body, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"lint"}, "draft": {"pack: p\nrules: [bad \u202e'gnp.exe']\n"}})
	listing := regexp.MustCompile(`(?s)<pre class="annotated">.*?</pre>`).FindString(body)
	if listing == "" {
		t.Fatalf("no annotated listing:\n%s", body)
	}
	if strings.Contains(listing, "\u202e") || !strings.Contains(listing, `rules: [bad \u202E&#39;gnp.exe&#39;]`) {
		t.Errorf("the listing shows the override as is:\n%s", listing)
	}
}

// A promotion from a draft page whose base= is no version (a forged form, or a number pasted over
// it) is refused as from a stale page, without base= as sent: the refusal showed it.
func TestPromotionBaseIsNotEchoed(t *testing.T) {
	rules := &fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a1", Content: []byte("pack: p\n")}}
	c := newServer(t, console.Deps{Rules: rules})
	csrf := c.Login("alice", "a-secret")
	code, body, _ := c.Post("/console/rules/draft", url.Values{"csrf": {csrf}, "action": {"promote"}, "base": {"139 1234 5678"}, "draft": {"pack: p\nrules: [x]\n"}})
	if code == http.StatusSeeOther || strings.Contains(body, "5678") || len(rules.promoted) != 0 {
		t.Errorf("promotion over base=<a number>: %d, promoted %v, the number shown: %v", code, rules.promoted, strings.Contains(body, "5678"))
	}
}

// A list entry's why is at most 200 characters, as the form's maxlength and its error say: it was
// counted in bytes, and a note in Chinese of 84 characters (234 bytes), which the browser let
// through, was refused as "at most 200 characters".
func TestListWhyCountsCharacters(t *testing.T) {
	c := newServer(t, console.Deps{Lists: &fakeLists{}})
	csrf := c.Login("alice", "a-secret")
	why := strings.Repeat("疑似接码平台批量注册", 20) // 200 characters, 600 bytes
	if code, body, _ := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.89"}, "why": {why}}); code != http.StatusSeeOther {
		t.Errorf("a why of 200 characters in Chinese: %d\n%s", code, regexp.MustCompile(`id="err-why">[^<]*`).FindString(body))
	}
	if code, body, _ := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.90"}, "why": {why + "。"}}); code != http.StatusBadRequest || !strings.Contains(body, `id="err-why">why: one line of at most 200 characters`) {
		t.Errorf("a why of 201 characters: %d", code)
	}
}

// The overview's app list offers every app with events, and an app id is what events carry: any
// text of at most 64 bytes without a control character or a phone number ("商城App", "shop app",
// "com.example/ios"). The filter took ASCII letters, digits and _ . : - only: choosing such an app
// from the list was refused next to the field, and the page showed every app's figures.
func TestOverviewFiltersOnAnyAppEventsCarry(t *testing.T) {
	h := &countingHistory{}
	c := newServer(t, console.Deps{History: h, CacheFor: -1})
	c.Login("alice", "a-secret")
	for _, app := range []string{"商城App", "shop app", "com.example/ios"} {
		_, body, _ := c.Get("/console/overview?range=24h&app=" + url.QueryEscape(app))
		h.mu.Lock()
		got := h.filters[len(h.filters)-1].App
		h.mu.Unlock()
		if strings.Contains(body, `id="err-app"`) || got != app {
			t.Errorf("app=%s: refused, or the history was asked for app %q", app, got)
		}
	}
	for _, app := range []string{"a\x01b", strings.Repeat("a", 65)} {
		if _, body, _ := c.Get("/console/overview?range=24h&app=" + url.QueryEscape(app)); !strings.Contains(body, `id="err-app"`) {
			t.Errorf("app=%q: no error next to app", app)
		}
	}
}

// A network entry as broad as the internet — 0.0.0.0/0 typed for 10.0.0.0/8, ::/0, or an IPv6
// network embedding every IPv4 address — is refused next to the field: one such block made every
// login on every node score 900 within a second ("on the block list: network 0.0.0.0/0", held-out
// run), and one such allow would lift every block.
func TestListNetworkAsBroadAsTheInternetIsRefused(t *testing.T) {
	lists := &fakeLists{}
	c := newServer(t, console.Deps{Lists: lists})
	csrf := c.Login("alice", "a-secret")
	for _, v := range []string{"0.0.0.0/0", "::/0", "0.0.0.0/7", "::ffff:0:0/96", "2000::/3"} {
		for _, action := range []string{"block", "allow"} {
			code, body, _ := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {action}, "kind": {"cidr"}, "value": {v}, "why": {"fat finger"}})
			if code != http.StatusBadRequest || !strings.Contains(body, `id="err-value">value: `) {
				t.Errorf("%s %s: %d, no error next to value", action, v, code)
			}
		}
	}
	if len(lists.entries) != 0 {
		t.Fatalf("added: %+v", lists.entries)
	}
	for _, v := range []string{"10.0.0.0/8", "240e::/20", "198.51.100.0/24"} {
		if code, body, _ := c.Post("/console/lists", url.Values{"csrf": {csrf}, "action": {"block"}, "kind": {"cidr"}, "value": {v}, "why": {"farm"}}); code != http.StatusSeeOther {
			t.Errorf("block %s: %d %s", v, code, regexp.MustCompile(`id="err-value">[^<]*`).FindString(body))
		}
	}
}

// brokenVersionRules records a version (00000000000000a3) this build no longer compiles.
type brokenVersionRules struct{ rollbackRecorder }

func (f *brokenVersionRules) Version(ctx context.Context, v string) (console.Version, error) {
	if v == "00000000000000a3" {
		return console.Version{Version: v, Content: "pack: p\nrules: [bad]\n"}, nil
	}
	return f.rollbackRecorder.Version(ctx, v)
}

// With two admins, a rollback to a version that no longer compiles is refused when it is asked
// for, naming the rule and the problem as the rollback itself does: it was accepted as a request
// and refused only when another admin approved it.
func TestRollbackRequestForAVersionThatNoLongerCompiles(t *testing.T) {
	rules := &brokenVersionRules{rollbackRecorder{fakeRules: fakeRules{live: console.PackInfo{Name: "p", Version: "00000000000000a2", Content: []byte("pack: p\nrules: [b]\n")}}}}
	alice := newServer(t, console.Deps{Rules: rules, Approvals: 2})
	csrf := alice.Login("alice", "a-secret")
	code, body, h := alice.Post("/console/rules/rollback", url.Values{"csrf": {csrf}, "version": {"00000000000000a3"}, "base": {"00000000000000a2"}, "confirm": {"yes"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "00000000000000a3 no longer compiles") || !strings.Contains(body, "rule r1: when: undeclared reference to &#39;bad&#39;") {
		t.Fatalf("a rollback request for a version that no longer compiles: %d %s\n%s", code, h.Get("Location"), body)
	}
	if _, body, _ := alice.Get("/console/rules"); pendingRE.MatchString(body) {
		t.Error("the refused rollback is listed under Waiting for approval")
	}
	if len(rules.rolledBack) != 0 {
		t.Errorf("rolled back %v", rules.rolledBack)
	}
}
