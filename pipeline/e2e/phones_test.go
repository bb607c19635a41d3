//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline"
)

// phoneBook hands out distinct phone numbers (13912345601, 13912345602, …) and remembers what
// each was used for, so that a number found where it must not be names the input that leaked.
type phoneBook struct {
	next  int64
	usage map[string]string
}

func (b *phoneBook) alloc(what string) string {
	if b.next == 0 {
		b.next = 13912345601
	}
	p := fmt.Sprint(b.next)
	b.next++
	b.usage[p] = what
	return p
}

// phoneFormat writes a number the way callers get it wrong (or right).
type phoneFormat struct {
	name string
	f    func(p string) string
}

var (
	// Written with separators, prefixes or garbage: none is a valid phone field, and each is a
	// phone in any free-text field.
	badFormats = []phoneFormat{
		{"+86 spaced", func(p string) string { return "+86 " + p[:3] + " " + p[3:7] + " " + p[7:] }},
		{"+86 dashed", func(p string) string { return "+86-" + p[:3] + "-" + p[3:7] + "-" + p[7:] }},
		{"tel:", func(p string) string { return "tel:" + p }},
		{"(139)", func(p string) string { return "(" + p[:3] + ")" + p[3:] }},
		{"dotted", func(p string) string { return p[:3] + "." + p[3:7] + "." + p[7:] }},
		{"86 prefix", func(p string) string { return "86" + p }},
		{"+86 and garbage", func(p string) string { return "+86" + p + " garbage" }},
		{"0086 spaced", func(p string) string { return "0086 " + p[:3] + " " + p[3:7] + " " + p[7:] }},
		{"full-width", fullWidth},
		{"full-width, ideographic spaces", func(p string) string {
			return fullWidth(p[:3]) + "\u3000" + fullWidth(p[3:7]) + "\u3000" + fullWidth(p[7:])
		}},
		{"slashes", func(p string) string { return p[:3] + "/" + p[3:7] + "/" + p[7:] }},
		{"underscores", func(p string) string { return p[:3] + "_" + p[3:7] + "_" + p[7:] }},
		{"percent-escaped", func(p string) string { return "%2B86%20" + p[:3] + "%20" + p[3:7] + "%20" + p[7:] }},
		{"form-encoded", func(p string) string { return "+86+" + p[:3] + "+" + p[3:7] + "+" + p[7:] }},
		{"soft hyphens", func(p string) string { return p[:3] + "\u00ad" + p[3:7] + "\u00ad" + p[7:] }},
		{"narrow no-break spaces", func(p string) string { return p[:3] + "\u202f" + p[3:7] + "\u202f" + p[7:] }},
	}
	// Only as a free-text value: the bare number.
	bareFormat = phoneFormat{"bare", func(p string) string { return p }}
	// Only as a phone field: glued garbage (as a free-text value it would be an identifier).
	phoneOnlyFormats = []phoneFormat{
		{"+86 glued garbage", func(p string) string { return "+86" + p + "garbage" }},
		{"bare and garbage", func(p string) string { return p + "x" }},
		{"with letters inside", func(p string) string { return p[:3] + "abc" + p[3:] }},
		{"spaced, 12 digits", func(p string) string { return p[:3] + " " + p[3:7] + " " + p[7:] + "9" }},
	}
)

func fullWidth(p string) string {
	var b strings.Builder
	for _, c := range p {
		b.WriteRune('０' + (c - '0'))
	}
	return b.String()
}

// input is one request or message that carries a tracked phone.
type input struct {
	what    string // channel / field / format
	channel string // check, events, kafka, path, auth
	field   string
	value   []byte // the body or message
	method  string // path probes
	path    string
	user    string // auth probe
	ctype   string // Content-Type probe
}

// Phone numbers put anywhere — in every field, in every bad format, as JSON numbers, as field
// names, in broken JSON, in URL paths, as the Basic-auth user — through /v1/risk/check, /v1/events
// and raw Kafka messages, plus valid events with phones in their phone field, never come back
// out: not in a response, a log line, risk.scores, a dead letter's headers or key, /metrics, or
// any ClickHouse table. Free-text fields holding a phone are refused (400 / dead-lettered).
func TestPhonesNeverEchoed(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	ctx := context.Background()
	addr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_LOG_LEVEL=debug")
	node := e.start("scorer,archiver,api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/readyz")
	api := newAPIClient(addr)
	book := &phoneBook{usage: map[string]string{}}
	now := time.Now()

	baseEvent := func(id string) map[string]any {
		return map[string]any{"event_id": id, "ts": now.UnixMilli(), "app_id": "it-app", "flow": "one_click_login",
			"phone": "13500001111", "ip": "100.64.80.1", "carrier": "CM", "platform": "android", "outcome": "success"}
	}
	baseCheck := func() map[string]any {
		return map[string]any{"phone": "13500001111", "ip": "100.64.80.1", "app_id": "it-app", "carrier": "CM", "flow": "one_click_login"}
	}
	freeText := map[string]bool{"event_id": true, "app_id": true, "device_id": true, "ex_id": true, "error_code": true}
	eventFields := []string{"event_id", "app_id", "device_id", "ex_id", "error_code", "flow", "carrier", "platform", "outcome", "ip", "ts", "token_digest", "schema", "phone", "@name", "@value"}
	checkFields := []string{"app_id", "device_id", "ex_id", "flow", "carrier", "platform", "ip", "token_digest", "phone", "@name", "@value"}

	var inputs []input
	n := 0
	// mutate sets field of obj to v: "@name" adds a member named v, "@value" a member "note" = v.
	mutate := func(obj map[string]any, field string, v any) {
		switch field {
		case "@name":
			obj[fmt.Sprint(v)] = "x"
		case "@value":
			obj["note"] = v
		default:
			obj[field] = v
		}
	}
	for _, channel := range []string{"check", "events", "kafka"} {
		fields := eventFields
		if channel == "check" {
			fields = checkFields
		}
		for _, field := range fields {
			formats := append([]phoneFormat{}, badFormats...)
			if field == "phone" {
				formats = append(formats, phoneOnlyFormats...)
			} else {
				formats = append(formats, bareFormat)
			}
			for _, f := range formats {
				what := fmt.Sprintf("%s / %s / %s", channel, field, f.name)
				p := book.alloc(what)
				n++
				obj := baseCheck()
				if channel != "check" {
					obj = baseEvent(fmt.Sprintf("pe-%04d", n))
				}
				mutate(obj, field, f.f(p))
				b, _ := json.Marshal(obj)
				inputs = append(inputs, input{what: what, channel: channel, field: field, value: b})
			}
			// The number as a JSON number.
			if field != "@name" {
				what := fmt.Sprintf("%s / %s / JSON number", channel, field)
				p := book.alloc(what)
				n++
				obj := baseCheck()
				if channel != "check" {
					obj = baseEvent(fmt.Sprintf("pe-%04d", n))
				}
				mutate(obj, field, json.Number(p))
				b, _ := json.Marshal(obj)
				inputs = append(inputs, input{what: what, channel: channel, field: field, value: b})
			}
		}
		// Broken documents.
		raws := []struct {
			name string
			f    func(p string) string
		}{
			{"truncated JSON", func(p string) string { return `{"event_id":"trunc","phone":"+86 ` + p }},
			{"a JSON string", func(p string) string { return `"+86-` + p[:3] + "-" + p[3:7] + "-" + p[7:] + `"` }},
			{"a JSON number", func(p string) string { return p }},
			{"plain text", func(p string) string { return "call me at +86 " + p[:3] + " " + p[3:7] + " " + p[7:] }},
			{"phone twice", func(p string) string {
				return `{"event_id":"twice","ts":` + fmt.Sprint(now.UnixMilli()) + `,"app_id":"it-app","flow":"one_click_login","phone":"13500001111","phone":"` + p + `","ip":"100.64.80.1","outcome":"success"}`
			}},
			{"an array", func(p string) string { return `[{"phone":"` + p + `"}]` }},
			{"bad JSON after the phone", func(p string) string { return `{"phone":"` + p + `",}` }},
			{"bad escape", func(p string) string { return `{"device_id":"tel:` + p + `\q"}` }},
		}
		for _, r := range raws {
			what := fmt.Sprintf("%s / raw / %s", channel, r.name)
			p := book.alloc(what)
			inputs = append(inputs, input{what: what, channel: channel, field: "raw", value: []byte(r.f(p))})
		}
	}
	// URL paths and the Basic-auth user.
	for _, path := range []func(p string) string{
		func(p string) string { return "/v1/risk/check/" + url.PathEscape("+86 "+p[:3]+" "+p[3:7]+" "+p[7:]) },
		func(p string) string { return "/v1/" + p },
		func(p string) string { return "/tel:" + p },
	} {
		p := book.alloc("path")
		pth := path(p)
		book.usage[p] = "path " + pth
		inputs = append(inputs, input{what: "path " + pth, channel: "path", method: http.MethodGet, path: pth})
		p = book.alloc("path")
		pth = path(p)
		book.usage[p] = "path DELETE " + pth
		inputs = append(inputs, input{what: "path DELETE " + pth, channel: "path", method: http.MethodDelete, path: pth})
	}
	for _, f := range []phoneFormat{bareFormat, badFormats[0]} {
		p := book.alloc("auth user " + f.name)
		inputs = append(inputs, input{what: "auth user " + f.name, channel: "auth", user: f.f(p), value: []byte(`{}`)})
	}
	// The Content-Type header: a media type, a charset, a malformed value.
	for _, ct := range []func(p string) string{
		func(p string) string { return "application/+86-" + p[:3] + "-" + p[3:7] + "-" + p[7:] },
		func(p string) string { return `application/json; charset="tel:` + p + `"` },
		func(p string) string { return "text/plain; x=(" + p[:3] + ")" + p[3:] },
		func(p string) string { return p },
	} {
		for _, path := range []string{"/v1/risk/check", "/v1/events"} {
			p := book.alloc("content type")
			v := ct(p)
			book.usage[p] = "Content-Type " + v + " on " + path
			inputs = append(inputs, input{what: "Content-Type " + v + " on " + path, channel: "ctype", path: path, ctype: v, value: []byte(`{}`)})
		}
	}

	// Valid traffic with tracked phones in the phone field: 4 attempts per number, so that the
	// velocity rules write reasons about them.
	var validAPI, validKafka [][]byte
	var validChecks [][]byte
	for k := 0; k < 6; k++ {
		pa, pk, pc := book.alloc("valid event via /v1/events"), book.alloc("valid event via kafka"), book.alloc("valid check")
		forms := func(p string) string { return []string{p, "+86" + p}[k%2] }
		for a := 0; a < 4; a++ {
			ev := baseEvent(fmt.Sprintf("ok-api-%d-%d", k, a))
			ev["phone"], ev["device_id"], ev["outcome"] = forms(pa), fmt.Sprintf("dev-ok-%d", k), []string{"success", "fail"}[a%2]
			b, _ := json.Marshal(ev)
			validAPI = append(validAPI, b)
			ev = baseEvent(fmt.Sprintf("ok-kafka-%d-%d", k, a))
			ev["phone"], ev["ip"] = forms(pk), "47.92.80.1"
			b, _ = json.Marshal(ev)
			validKafka = append(validKafka, b)
		}
		c := baseCheck()
		c["phone"], c["ex_id"], c["device_id"] = forms(pc), fmt.Sprintf("ex-ok-%d", k), "dev-check"
		b, _ := json.Marshal(c)
		validChecks = append(validChecks, b)
	}
	t.Logf("%d inputs carrying %d tracked numbers", len(inputs)+len(validAPI)+len(validKafka)+len(validChecks), len(book.usage))

	// Send everything.
	type sourceText struct{ name, text string }
	var corpus []sourceText
	respond := func(what string, code int, hdr http.Header, body []byte) {
		var h strings.Builder
		for k, vs := range hdr {
			fmt.Fprintf(&h, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		corpus = append(corpus, sourceText{"response to " + what, fmt.Sprintf("%d\n%s\n%s", code, h.String(), body)})
	}
	var kafkaBad [][]byte
	kafkaBadWhat := map[string]input{}
	raw := &http.Client{Timeout: 10 * time.Second}
	for _, in := range inputs {
		switch in.channel {
		case "check", "events":
			path := "/v1/risk/check"
			if in.channel == "events" {
				path = "/v1/events"
			}
			code, hdr, body, err := api.post(path, in.value)
			if err != nil {
				t.Fatalf("%s: %v", in.what, err)
			}
			respond(in.what, code, hdr, body)
			switch {
			case in.field == "phone" && (code == http.StatusBadRequest || code == http.StatusOK || code == http.StatusAccepted):
			case code != http.StatusBadRequest:
				t.Errorf("%s: %d %s, want 400", in.what, code, strings.TrimSpace(string(body)))
			}
		case "kafka":
			kafkaBad = append(kafkaBad, in.value)
			kafkaBadWhat[string(in.value)] = in
		case "path":
			req, _ := http.NewRequest(in.method, api.base+in.path, strings.NewReader("{}"))
			req.SetBasicAuth("it-app", "it-secret")
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", in.what, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			respond(in.what, resp.StatusCode, resp.Header, body)
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s: %d, want 404 or 405", in.what, resp.StatusCode)
			}
		case "ctype":
			req, _ := http.NewRequest(http.MethodPost, api.base+in.path, strings.NewReader(string(in.value)))
			req.SetBasicAuth("it-app", "it-secret")
			req.Header.Set("Content-Type", in.ctype)
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", in.what, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			respond(in.what, resp.StatusCode, resp.Header, body)
			if resp.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("%s: %d %s, want 415", in.what, resp.StatusCode, strings.TrimSpace(string(body)))
			}
		case "auth":
			req, _ := http.NewRequest(http.MethodPost, api.base+"/v1/risk/check", strings.NewReader(string(in.value)))
			req.SetBasicAuth(in.user, "wrong")
			req.Header.Set("Content-Type", "application/json")
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", in.what, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			respond(in.what, resp.StatusCode, resp.Header, body)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", in.what, resp.StatusCode)
			}
		}
	}
	vb, _ := json.Marshal(rawJSONs(validAPI))
	code, hdr, body, err := api.post("/v1/events", vb)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /v1/events with %d valid events: %d %s %v", len(validAPI), code, body, err)
	}
	respond("valid events", code, hdr, body)
	w := e.writer()
	e.produce(ctx, w, kafkaBad)
	e.produce(ctx, w, validKafka)
	// Valid checks, after the events so that the numbers' windows hold something.
	time.Sleep(time.Second)
	for i, c := range validChecks {
		code, hdr, body, err := api.post("/v1/risk/check", c)
		if err != nil || code != http.StatusOK {
			t.Errorf("valid check %d: %d %s %v", i, code, body, err)
		}
		respond(fmt.Sprintf("valid check %d", i), code, hdr, body)
	}

	// Wait for the pipeline: every valid event scored and archived, every raw message either
	// dead-lettered or scored.
	ids := newScoreIDs(newCursor(t, e.scores, false))
	if got := ids.waitFor("ok-", len(validAPI)+len(validKafka), 2*time.Minute); got != len(validAPI)+len(validKafka) {
		t.Fatalf("%d of %d valid events were scored", got, len(validAPI)+len(validKafka))
	}
	var dlq []kafka.Message
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ids.poll()
		scoredRaw := 0
		for _, v := range kafkaBad {
			if id := jsonField(v, "event_id"); id != "" && ids.seen[id] > 0 {
				scoredRaw++
			}
		}
		if end := topicEnd(t, e.dlq); int(end)+scoredRaw >= len(kafkaBad) || time.Now().After(deadline) {
			dlq = readDLQ(t, e.dlq, int(end))
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	dead := map[string]kafka.Message{}
	for _, m := range dlq {
		dead[string(m.Value)] = m
	}
	for _, v := range kafkaBad {
		in := kafkaBadWhat[string(v)]
		m, isDead := dead[string(v)]
		id := jsonField(v, "event_id")
		scored := id != "" && ids.seen[id] > 0
		switch {
		case isDead && scored:
			t.Errorf("%s: both dead-lettered and scored", in.what)
		case !isDead && (in.field != "phone" || !scored):
			t.Errorf("%s: not dead-lettered (scored: %v): %s", in.what, scored, v)
		case isDead && freeText[in.field] && header(m, pipeline.HeaderField) != in.field:
			t.Errorf("%s: dead-lettered with field %q, want %q (error %q)", in.what, header(m, pipeline.HeaderField), in.field, header(m, pipeline.HeaderError))
		}
	}
	sent := map[string]bool{}
	for _, v := range kafkaBad {
		sent[string(v)] = true
	}
	for _, m := range dlq {
		if !sent[string(m.Value)] {
			t.Errorf("unexpected dead letter (not one of the raw messages): %s (error %q)", m.Value, header(m, pipeline.HeaderError))
		}
	}
	for _, v := range kafkaBad {
		if id := jsonField(v, "event_id"); id != "" && ids.seen[id] > 0 {
			t.Logf("accepted and scored: %s", kafkaBadWhat[string(v)].what)
		}
	}
	scoredIDs := 0
	ids.poll()
	for range ids.seen {
		scoredIDs++
	}
	if got := e.waitCount(ctx, eventsQuery, uint64(scoredIDs), time.Minute); got != uint64(scoredIDs) {
		t.Errorf("verify_events FINAL holds %d rows, risk.scores %d event ids", got, scoredIDs)
	}
	if got := e.waitCount(ctx, exactlyOnceQuery, uint64(scoredIDs), 30*time.Second); got != uint64(scoredIDs) {
		t.Errorf("risk_scores FINAL holds %d rows, risk.scores %d event ids", got, scoredIDs)
	}
	t.Logf("%d raw messages: %d dead-lettered; %d events scored", len(kafkaBad), len(dlq), scoredIDs)

	// Collect everything the run wrote.
	for _, m := range newCursor(t, e.scores, false).poll() {
		corpus = append(corpus, sourceText{"risk.scores record", fmt.Sprintf("key=%s headers=%s value=%s", m.Key, headerText(m), m.Value)})
	}
	for _, m := range dlq {
		corpus = append(corpus, sourceText{"dead letter headers and key", fmt.Sprintf("key=%s %s", m.Key, headerText(m))})
	}
	for _, m := range newCursor(t, e.events, false).poll() {
		corpus = append(corpus, sourceText{"verify.events key and headers", fmt.Sprintf("key=%s %s", m.Key, headerText(m))})
	}
	_, metrics, err := api.get("/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	corpus = append(corpus, sourceText{"/metrics", string(metrics)})
	_, ready, _ := api.get("/readyz")
	corpus = append(corpus, sourceText{"/readyz", string(ready)})
	tables := chHTTP(t, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s' FORMAT TabSeparated", e.db))
	var tableNames []string
	for _, name := range strings.Fields(tables) {
		tableNames = append(tableNames, name)
		corpus = append(corpus, sourceText{"ClickHouse " + name, chHTTP(t, fmt.Sprintf("SELECT * FROM %s.`%s` FORMAT TabSeparated", e.db, name))})
	}
	if len(tableNames) < 2 {
		t.Errorf("ClickHouse database %s has tables %v", e.db, tableNames)
	}
	node.stop(syscall.SIGTERM) //: the shutdown's log lines count too
	corpus = append(corpus, sourceText{"riskflow log", node.log.String()})

	// The detector finds every number in the form it was sent (a number with letters inside is
	// not a phone any more, for riskflow or for this test).
	for _, in := range inputs {
		sentAs := string(in.value) + " " + in.path + " " + in.user + " " + in.ctype
		if strings.Contains(in.what, "letters inside") {
			continue
		}
		if len(phoneHits(sentAs, book.usage)) == 0 {
			t.Errorf("the detector does not find the number of %s in %q", in.what, sentAs)
		}
	}

	// Grep it all for every tracked number, however it is written.
	hits := 0
	for _, src := range corpus {
		for _, h := range phoneHits(src.text, book.usage) {
			hits++
			if hits <= 25 {
				t.Errorf("phone %s (sent as %s) found in %s: …%s…", h.phone, book.usage[h.phone], src.name, h.context)
			}
		}
	}
	var bytesScanned int
	for _, src := range corpus {
		bytesScanned += len(src.text)
	}
	t.Logf("scanned %d sources (%d bytes, ClickHouse tables %v) for %d numbers: %d hits", len(corpus), bytesScanned, tableNames, len(book.usage), hits)
	if hits > 25 {
		t.Errorf("… %d hits in all", hits)
	}
}

func rawJSONs(vs [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

func headerText(m kafka.Message) string {
	var b strings.Builder
	for _, h := range m.Headers {
		fmt.Fprintf(&b, "%s=%s ", h.Key, h.Value)
	}
	return b.String()
}

// chHTTP runs a query through ClickHouse's HTTP interface and returns the output.
func chHTTP(t *testing.T, query string) string {
	t.Helper()
	resp, err := http.Post("http://"+chHTTPAddr+"/", "text/plain", strings.NewReader(query))
	if err != nil {
		t.Fatalf("clickhouse http: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clickhouse http %q: %d %s", query, resp.StatusCode, b)
	}
	return string(b)
}

var chHTTPAddr = envOr("RISKFLOW_CLICKHOUSE_HTTP", "127.0.0.1:"+envOr("RISKFLOW_CLICKHOUSE_HTTP_PORT", "18123"))

type phoneHit struct{ phone, context string }

// phoneHits finds tracked numbers in text however they are written: full-width digits count as
// digits, and digits joined by runs of up to 3 separators (space - . ( ) + _ / : \, the
// ideographic space, the full-width hyphen) are read as one number, whose digits are then
// searched for every tracked number.
func phoneHits(text string, tracked map[string]string) []phoneHit {
	hits := scanPhones(text, tracked)
	if strings.Contains(text, "%") { // and URL-escaped: %20 between the groups
		seen := map[string]bool{}
		for _, h := range hits {
			seen[h.phone] = true
		}
		for _, h := range scanPhones(percentDecode(text), tracked) {
			if !seen[h.phone] {
				hits = append(hits, h)
			}
		}
	}
	sort.Slice(hits, func(a, b int) bool { return hits[a].phone < hits[b].phone })
	return hits
}

// percentDecode decodes every valid %XX escape of s and leaves the rest as it is.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := url.PathUnescape(s[i : i+3]); err == nil {
				b.WriteString(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func scanPhones(text string, tracked map[string]string) []phoneHit {
	var ascii strings.Builder
	for _, r := range text {
		if r >= '０' && r <= '９' {
			ascii.WriteByte(byte('0' + r - '０'))
		} else if r == '\u3000' || r == '－' || unicode.In(r, unicode.Zs, unicode.Cf) {
			ascii.WriteByte(' ')
		} else {
			ascii.WriteRune(r)
		}
	}
	s := ascii.String()
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isSep := func(c byte) bool { return strings.IndexByte(" -.()+_/:\\", c) >= 0 }
	var hits []phoneHit
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		start := i
		var digits []byte
		j := i
		for j < len(s) {
			if isDigit(s[j]) {
				digits = append(digits, s[j])
				j++
				continue
			}
			k := j
			for k < len(s) && k-j < 3 && isSep(s[k]) {
				k++
			}
			if k == j || k == len(s) || !isDigit(s[k]) {
				break
			}
			j = k
		}
		for k := 0; k+11 <= len(digits); k++ {
			if _, ok := tracked[string(digits[k:k+11])]; ok {
				hits = append(hits, phoneHit{string(digits[k : k+11]), s[max(0, start-80):min(len(s), j+80)]})
				break
			}
		}
		i = j
	}
	return hits
}
