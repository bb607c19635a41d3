package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/bounded"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// apiRoutes are the routes FuzzAPI sends its requests to, by the fuzzer's route number: an
// admin's, then /readyz, then an app's.
var apiRoutes = []struct{ method, path string }{
	{"POST", "/v1/admin/explain"},
	{"POST", "/v1/admin/labels"},
	{"GET", "/v1/rules"},
	{"PUT", "/v1/rules"},
	{"GET", "/v1/rules/versions"},
	{"POST", "/v1/rules/rollback"},
	{"GET", "/readyz"},
	{"POST", "/v1/risk/check"},
	{"POST", "/v1/events"},
}

// memLabels is the labels' store of FuzzAPI: it keeps nothing, and holds every decision and
// event but those whose id starts with "missing".
type memLabels struct{}

func (memLabels) Label(context.Context, []schemas.Label) error { return nil }
func (memLabels) UnknownTargets(_ context.Context, ls []schemas.Label) ([]schemas.Label, error) {
	var out []schemas.Label
	for _, l := range ls {
		if _, id := l.Target(); strings.HasPrefix(id, "missing") {
			out = append(out, l)
		}
	}
	return out, nil
}

// badRequestNames is how a 400's content starts: the query parameter, header or body field it is
// about ("version: …", "[2].decision_id: …", "If-Match: …"), or the body as a whole when it is no
// JSON object at all ("invalid JSON: …", "body …", "expected a JSON object, …", "the array holds
// no labels", "unexpected data after the JSON object"), a member name
// of the body that cannot be shown (not UTF-8), a member whose name is empty (the check's and
// events' decoders say `unknown field ""`), or the subject of an explanation when none or
// several are given.
var badRequestNames = regexp.MustCompile(`^(` + fieldName + `)+: |^unknown field ""$|^(invalid JSON|body|expected a JSON object|unexpected data after the JSON (object|array)|the array holds no (labels|events)|(a )?member name|give (one|exactly one) of|rule pack rejected)\b`)

// fieldName is a member's or parameter's name as an error shows it, or a part of its path: as it
// is when it is printable ASCII without spaces, quotes or backslashes ("00000", "[2].note"), or
// quoted with Go escapes (schemas.ShowName: "", "x y", a name holding a number).
const fieldName = `[!#-\[\]-~]|"(?:[^"\\]|\\.)*"`

// FuzzAPI sends the admin and investigation routes (explain, labels, the rules' reads,
// update and rollback) with an admin's credentials, /readyz, and the app routes (checks, events)
// with an app's, any query string, Content-Type, If-Match and body, to the API as an api node
// builds it: the real scorer over the default pack, the real rule-pack service (versions kept in
// memory) behind rulesAdmin, the node's readiness, and the real publisher into a Kafka that takes
// everything. Whatever the request, the handler answers within seconds and without a panic; no
// answer is a 5xx (nothing here is down: only the request can be wrong); a 400 names the
// parameter or field it is about; every answer's content, and the node's log, is valid UTF-8
// without control characters and shows no phone number.
//
//	go test -run '^$' -fuzz '^FuzzAPI$' -fuzztime 5m ./cmd/riskflow
func FuzzAPI(f *testing.F) {
	seeds := []struct {
		route                 uint8
		query, ctype, ifMatch string
		body                  string
	}{
		{0, "", "application/json", "", `{"phone":"13812348000"}`},
		{0, "", "application/json", "", `{"phone":"+86 138-1234-8000","app_id":"app1"}`},
		{0, "", "application/json", "", `{"ip":"223.104.3.7","app_id":"app1"}`},
		{0, "", "", "", `{"device_id":"13812348000"}`},
		{0, "", "", "", `{"phone":"138１２３４8000","ip":"1.2.3.4"}`},
		{0, "", "text/plain", "", `{"ip":"::1"}`},
		{0, "", "application/json; charset=latin1", "", `{}`},
		{0, "phone=13812348000", "application/json", "", `{"Phone":"13812348000"}`},
		{0, "", "application/json", "", `{"phone":"13812348000"}]`},
		{0, "", "application/json", "", `{"phone":13812348000}`},
		{0, "", "application/json", "", `{"app_id":"13812348000"}`},
		{1, "", "application/json", "", `[{"app_id":"app1","decision_id":"d1","label":"fraud"}]`},
		{1, "", "application/json", "", `{"app_id":"app1","event_id":"missing-1","label":"legit","note":"call 13812348000"}`},
		{1, "", "application/json", "", `[{"app_id":"app1","decision_id":"13812348000","label":"fraud"},{"app_id":"app1"}]`},
		{1, "", "application/json", "", `[` + strings.Repeat(`[`, 10000) + `]`},
		{1, "", "application/json", "", `[{"app_id":"app1","decision_id":"d1","label":"fraud","label":"legit"}]`},
		{2, "x=13812348000", "", "", ""},
		{3, "tests=skip", "application/yaml", "", "pack: tiny\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 2'}\n"},
		{3, "tests=13812348000", "application/yaml", "", "pack: p\n"},
		{3, "", "application/yaml", `"13812348000"`, "pack: p\nrules: []\n"},
		{3, "", "application/yaml", "", "pack: p\nrules:\n  - {id: r1, tag: t, level: 300, when: 'phone == \"13812348000\"'}\n"},
		{3, "", "application/x-yaml", "W/\"v\"", "rules:\n  - {id: \"13812348000\", tag: t, level: 1, when: 'true'}\n"},
		{4, "limit=-1&before=13812348000", "", "", ""},
		{5, "", "application/x-www-form-urlencoded", "", `{"version":"3f2a9c0d1e2b4a5f"}`},
		{5, "", "", "", `{"version":"13812348000"}`},
		{5, "", "", "", `{"version":""}`},
		{5, "", "", "", `{"version":["v"]}`},
		{5, "", "", "", `{"Version":"3f2a9c0d1e2b4a5f"}`},
		{5, "", "", "", "{\"version\":\"\xff\"}"},
		{6, "exclude=archiver&exclude=decisions", "", "", ""},
		{6, "exclude=13812348000", "", "", ""},
		{6, "exclude=%E2%80%AE&exclude=", "", "", ""},
		{6, "exclude=%ZZ", "", "", ""},
		{6, "exclude=fresh;", "", "", ""},
		{6, "exlude=fresh", "", "", ""},
		{3, "tests=%zz&tests=skip", "application/yaml", "", "pack: p\n"},
		{7, "", "application/json", "", `{"phone":"+8613800138000","ip":"223.104.3.7","carrier":"CM","app_id":"app1","flow":"one_click_login","platform":"android","device_id":"d-1","ex_id":"ex-42"}`},
		{7, "", "application/json", "", `{"phone":"13800138000","ip":"223.104.3.7","app_id":"app2","flow":"one_click_login","ex_id":"13812348000"}`},
		{7, "", "", "", `{"phone":"138 0013 8000","ip":"::ffff:1.2.3.4","app_id":"app1","flow":"sms","device_id":"13812348000"}`},
		{8, "", "application/json", "", `{"event_id":"e1","ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.2.3.4","outcome":"success"}`},
		{8, "", "application/json", "", `[{"event_id":"e1","ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.2.3.4","outcome":"fail","error_code":"call 13812348000"}]`},
		{8, "", "application/json", "", `[{"event_id":"e1","ts":"2999-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.2.3.4","outcome":"success"}]`},
	}
	for _, s := range seeds {
		f.Add(s.route, s.query, s.ctype, s.ifMatch, []byte(s.body))
	}
	srv, logs := fuzzAPIServer(f)
	var mu sync.Mutex // the rule pack a PUT or rollback loads is the next request's
	f.Fuzz(func(t *testing.T, route uint8, query, ctype, ifMatch string, body []byte) {
		if len(body) > 256<<10 || len(query) > 8<<10 {
			t.Skip()
		}
		rt := apiRoutes[int(route)%len(apiRoutes)]
		r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		r.URL.RawQuery = query
		if strings.HasPrefix(rt.path, "/v1/risk/") || rt.path == "/v1/events" {
			r.SetBasicAuth("app1", "secret1")
		} else {
			r.SetBasicAuth("lead", "admin-secret")
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if ifMatch != "" {
			r.Header.Set("If-Match", ifMatch)
		}
		mu.Lock()
		defer mu.Unlock()
		before := len(logs.String())
		w := bounded.Run(t, 20*time.Second, fmt.Sprintf("%s %s of a %d-byte body", rt.method, rt.path, len(body)), func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			return w
		})
		in := fmt.Sprintf("%s %s?%q Content-Type %q If-Match %q body %q", rt.method, rt.path, query, ctype, ifMatch, body)
		if w.Code >= 500 {
			t.Fatalf("answered %d %s to %s", w.Code, w.Body, in)
		}
		checkAnswerText(t, "answer", untimed(strings.TrimSuffix(w.Body.String(), "\n")), in)
		if log := logs.String()[before:]; log != "" {
			checkAnswerText(t, "log", untimed(strings.ReplaceAll(log, "\n", " ")), in)
		}
		if _, err := url.ParseQuery(query); err != nil && (rt.path == "/readyz" || rt.method == "PUT") && w.Code != http.StatusBadRequest {
			// url.Query drops the pair: the parameter it held would go unread.
			t.Fatalf("answered %d %s to a query net/url cannot read (%v): %s", w.Code, w.Body, err, in)
		}
		if w.Code < 400 {
			return
		}
		var eb schemas.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Code != w.Code || eb.Content == "" {
			t.Fatalf("answered %d with %q, not {code, content} (%v) to %s", w.Code, w.Body, err, in)
		}
		// A rejected pack lists its problems one a line; nothing else is on several lines.
		checkAnswerText(t, "content", strings.ReplaceAll(eb.Content, "\n", " "), in)
		if w.Code == http.StatusBadRequest && !badRequestNames.MatchString(eb.Content) {
			t.Fatalf("400 %q names no parameter or field, to %s", eb.Content, in)
		}
	})
}

// fuzzAPIServer is the API of an api node with admin keys, labels and a rule-pack service
// whose history is in memory, logging into the returned buffer.
func fuzzAPIServer(tb testing.TB) (http.Handler, *syncbuf.Buffer) {
	tb.Helper()
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // digits of its own, which say nothing of a request
			}
			return a
		}}))
	hasher := schemas.NewPhoneHasher([]byte("k"))
	s, err := buildScorer(Default().Scoring, hasher, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	svc := rulesvc.New(rulesvc.Config{Default: packs.Default(), Node: "n"}, s, &versionsInMemory{byVer: map[string]rulesvc.Version{}}, slog.New(slog.DiscardHandler))
	if _, err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	h := &health{}
	h.add("state", func() error { return nil })
	h.add("lists", func() error { return nil })
	admins := map[string]string{"lead": "admin-secret"}
	srv := api.New(api.Config{Keys: map[string]string{"app1": "secret1"}}, s, &pipeline.Publisher{W: discardWriter{}, Hasher: hasher},
		api.WithServing(func() error { return nil }), api.WithReadiness(h.ready), api.WithLogger(log),
		api.WithRulesAdmin(rulesAdmin{s: svc}, admins), api.WithStateHealth(h.stateCurrent),
		api.WithAdmins(admins), api.WithInvestigation(s, memLabels{}))
	return srv, &logs
}

// timestamp is an RFC 3339 time an answer or a log line shows (an explanation's "at"): its
// fraction's digits may read as a number ("18.931225845"), and it shows nothing of a request.
var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

// untimed replaces each timestamp of s by TIME, but not one glued to a digit on either side: that
// would split a digit run of s ("+00:001000000000 0", twelve digits, read as TIME1000000000 0,
// eleven with a space — a number s does not show).
func untimed(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range timestamp.FindAllStringIndex(s, -1) {
		if m[0] > 0 && isDigit(s[m[0]-1]) || m[1] < len(s) && isDigit(s[m[1]]) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString("TIME")
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// discardWriter is a Kafka that takes every message.
type discardWriter struct{}

func (discardWriter) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// checkAnswerText fails t unless text is valid UTF-8 without control characters (bidi controls
// included) and shows no phone number.
func checkAnswerText(t *testing.T, what, text, in string) {
	t.Helper()
	switch {
	case !utf8.ValidString(text):
		t.Fatalf("%s is not valid UTF-8: %q, to %s", what, text, in)
	case strings.ContainsFunc(text, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }):
		t.Fatalf("%s holds a control character: %q, to %s", what, text, in)
	case schemas.MaskPhones(text) != text:
		t.Fatalf("%s shows a phone number: %q, to %s", what, text, in)
	}
}
