package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

const testPhone = "13800138000"

var testReq = schemas.CheckRequest{
	Phone:    testPhone,
	IP:       netip.MustParseAddr("203.0.113.7"),
	Carrier:  schemas.CarrierMobile,
	AppID:    "app-1",
	Flow:     schemas.FlowOneClickLogin,
	Platform: "android",
	ExID:     "ex-42",
}

var okVerdict = schemas.RiskCheck{
	Code: 0, Content: "success", Score: 600,
	Tags:         []string{"ip_many_phones"},
	Detail:       map[string]schemas.TagDetail{"ip_many_phones": {Score: 600, Reason: "38 phones from this IP in 1h"}},
	ID:           "evt-1",
	ExID:         "ex-42",
	RulesVersion: "r7",
}

// hangGuard is how long a test waits for a Check that must end on a context deadline well before
// it; it only turns a hang into a failure and measures nothing.
const hangGuard = 10 * time.Second

func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newClient makes a client with a roomy timeout (tests run under -race on busy machines), which
// opts may override; tests about timeouts set their own.
func newClient(t *testing.T, baseURL string, opts ...Option) *Client {
	t.Helper()
	c, err := New(baseURL, "key-1", "secret-1", append([]Option{WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newStuckServer is a riskflow that never answers: it holds each request until the client gives
// up (the server notices the closed connection once the body has been read) or the test ends.
func newStuckServer(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

// deadURL returns the address of a listener that has been closed: connections are refused.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// checkWithGuard runs Check and fails the test if it has not returned within hangGuard.
func checkWithGuard(t *testing.T, c *Client, ctx context.Context) (schemas.RiskCheck, error) {
	t.Helper()
	type result struct {
		rc  schemas.RiskCheck
		err error
	}
	done := make(chan result, 1)
	go func() {
		rc, err := c.Check(ctx, testReq)
		done <- result{rc, err}
	}()
	select {
	case r := <-done:
		return r.rc, r.err
	case <-time.After(hangGuard):
		t.Fatalf("Check still running after %s", hangGuard)
		return schemas.RiskCheck{}, nil
	}
}

func assertNoPhone(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testPhone) {
		t.Errorf("error leaks the phone number: %v", err)
	}
}

// assertFailVerdict checks a fail-policy verdict with the given score.
func assertFailVerdict(t *testing.T, rc schemas.RiskCheck, score int) {
	t.Helper()
	if rc.Code != 0 || rc.Content != UnavailableTag || rc.Score != score || rc.ExID != testReq.ExID {
		t.Errorf("verdict = %+v, want code 0, content %q, score %d, exID %q", rc, UnavailableTag, score, testReq.ExID)
	}
	if !reflect.DeepEqual(rc.Tags, []string{UnavailableTag}) {
		t.Errorf("tags = %v, want [%s]", rc.Tags, UnavailableTag)
	}
	d, ok := rc.Detail[UnavailableTag]
	if len(rc.Detail) != 1 || !ok || d.Score != score || d.Reason == "" {
		t.Errorf("detail = %+v, want one %s entry with score %d and a reason", rc.Detail, UnavailableTag, score)
	}
	if strings.Contains(d.Reason, testPhone) {
		t.Errorf("reason leaks the phone number: %q", d.Reason)
	}
}

// unavailable asserts err is an *UnavailableError and returns it.
func unavailable(t *testing.T, err error) *UnavailableError {
	t.Helper()
	assertNoPhone(t, err)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want *UnavailableError", err, err)
	}
	return ue
}

func TestCheckSuccess(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/risk/check" {
			t.Errorf("got %s %s, want POST /v1/risk/check", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "key-1" || pass != "secret-1" {
			t.Errorf("basic auth = %q, %q, %v; want key-1, secret-1", user, pass, ok)
		}
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("key-1:secret-1"))
		if got := r.Header.Get("Authorization"); got != want {
			t.Errorf("Authorization = %q, want %q", got, want)
		}
		body, _ := io.ReadAll(r.Body)
		got, err := schemas.DecodeCheckRequest(body)
		if err != nil {
			t.Errorf("server cannot decode the request: %v", err)
		} else if !reflect.DeepEqual(got, testReq) {
			t.Errorf("server decoded %+v, want %+v", got, testReq)
		}
		writeJSON(w, http.StatusOK, okVerdict)
	})
	c := newClient(t, srv.URL)
	rc, err := c.Check(context.Background(), testReq)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !reflect.DeepEqual(rc, okVerdict) {
		t.Errorf("verdict = %+v, want %+v", rc, okVerdict)
	}
	if hits.Load() != 1 {
		t.Errorf("server saw %d requests, want 1", hits.Load())
	}
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("BreakerState = %q, want closed", s)
	}
}

func TestBaseURLWithPrefix(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/risk/v1/risk/check" {
			t.Errorf("path = %q, want /risk/v1/risk/check", r.URL.Path)
		}
		writeJSON(w, http.StatusOK, okVerdict)
	})
	if _, err := newClient(t, srv.URL+"/risk/").Check(context.Background(), testReq); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestCallerErrorsAreAPIErrorsAndDoNotTrip(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    schemas.ErrorBody
		content string // what APIError.Content must be
	}{
		{400, schemas.ErrorBody{Code: 1001, Content: `phone: "` + testPhone + `" is not a mainland mobile number`},
			`phone: "1380013****" is not a mainland mobile number`},
		{401, schemas.ErrorBody{Code: 1002, Content: "unknown app key or wrong secret"}, "unknown app key or wrong secret"},
		{413, schemas.ErrorBody{Code: 1003, Content: "body larger than 65536 bytes"}, "body larger than 65536 bytes"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			var hits atomic.Int64
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				writeJSON(w, tc.status, tc.body)
			})
			c := newClient(t, srv.URL, WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Minute}))
			const calls = 5
			for range calls {
				rc, err := c.Check(context.Background(), testReq)
				assertNoPhone(t, err)
				var api *APIError
				if !errors.As(err, &api) {
					t.Fatalf("err = %v (%T), want *APIError", err, err)
				}
				if api.Status != tc.status || api.Code != tc.body.Code || api.Content != tc.content {
					t.Errorf("APIError = %+v, want status %d, code %d, content %q", api, tc.status, tc.body.Code, tc.content)
				}
				var ue *UnavailableError
				if errors.As(err, &ue) {
					t.Errorf("a %d answer must not be reported as unavailable: %v", tc.status, err)
				}
				if !reflect.DeepEqual(rc, schemas.RiskCheck{}) {
					t.Errorf("verdict = %+v, want the zero value (no fail-open for a bad request)", rc)
				}
			}
			if s := c.BreakerState(); s != "closed" {
				t.Errorf("BreakerState = %q after %d %d answers, want closed", s, calls, tc.status)
			}
			if hits.Load() != calls {
				t.Errorf("server saw %d requests, want %d", hits.Load(), calls)
			}
		})
	}
}

func TestAPIErrorWithoutJSONBody(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>too big</html>", http.StatusRequestEntityTooLarge)
	})
	_, err := newClient(t, srv.URL).Check(context.Background(), testReq)
	var api *APIError
	if !errors.As(err, &api) || api.Status != 413 || api.Code != 0 || api.Content != "Request Entity Too Large" {
		t.Fatalf("err = %#v, want *APIError{413, 0, status text}", err)
	}
}

func TestBreakerOpensWhenAPIIsDown(t *testing.T) {
	c := newClient(t, deadURL(t), WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Minute}))
	for i := range 3 {
		rc, err := c.Check(context.Background(), testReq)
		ue := unavailable(t, err)
		if errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("call %d: breaker open before %d failures", i, 3)
		}
		if ue.Reason != "cannot reach riskflow" {
			t.Errorf("call %d: reason = %q", i, ue.Reason)
		}
		assertFailVerdict(t, rc, 0)
	}
	if s := c.BreakerState(); s != "open" {
		t.Fatalf("BreakerState = %q after 3 refused connections, want open", s)
	}
	rc, err := c.Check(context.Background(), testReq)
	if ue := unavailable(t, err); !errors.Is(err, ErrBreakerOpen) || !strings.Contains(ue.Reason, "circuit breaker open") {
		t.Errorf("err = %v, reason %q; want ErrBreakerOpen", err, ue.Reason)
	}
	assertFailVerdict(t, rc, 0)
}

func TestBreakerOpensWhenAPIIsSlow(t *testing.T) {
	var hits atomic.Int64
	srv := newStuckServer(t, &hits)
	c := newClient(t, srv.URL, WithTimeout(20*time.Millisecond),
		WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Minute}))
	for i := range 3 {
		rc, err := checkWithGuard(t, c, context.Background())
		ue := unavailable(t, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: err = %v, want context.DeadlineExceeded in the chain", i, err)
		}
		if ue.Reason != "riskflow did not answer within 20ms" {
			t.Errorf("call %d: reason = %q", i, ue.Reason)
		}
		assertFailVerdict(t, rc, 0)
	}
	if s := c.BreakerState(); s != "open" {
		t.Fatalf("BreakerState = %q after 3 timeouts, want open", s)
	}
	for range 10 {
		rc, err := checkWithGuard(t, c, context.Background())
		unavailable(t, err)
		if !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("err = %v, want ErrBreakerOpen", err)
		}
		assertFailVerdict(t, rc, 0)
	}
	// Each of the 3 failed calls made at most one request (some may still be arriving); the 10
	// calls while open made none.
	if n := hits.Load(); n > 3 {
		t.Errorf("server saw %d requests, want at most 3: requests were sent while the breaker was open", n)
	}
}

func TestBreakerRecovers(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			writeJSON(w, http.StatusServiceUnavailable, schemas.ErrorBody{Code: 5030, Content: "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, okVerdict)
	})
	c := newClient(t, srv.URL, WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: 50 * time.Millisecond}))
	for range 2 {
		rc, err := c.Check(context.Background(), testReq)
		unavailable(t, err)
		var api *APIError
		if !errors.As(err, &api) || api.Status != 503 || api.Content != "not ready" {
			t.Errorf("err = %v, want an *APIError 503 inside", err)
		}
		assertFailVerdict(t, rc, 0)
	}
	if s := c.BreakerState(); s != "open" {
		t.Fatalf("BreakerState = %q after two 503s, want open", s)
	}
	healthy.Store(true)
	before := hits.Load()

	// Wait (bounded) for the open period to end.
	for i := 0; c.BreakerState() != "half-open"; i++ {
		if i == 1000 {
			t.Fatalf("breaker still %q after %d polls", c.BreakerState(), i)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if hits.Load() != before {
		t.Errorf("server saw %d requests while the breaker was open, want 0", hits.Load()-before)
	}
	rc, err := c.Check(context.Background(), testReq)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if rc.Score != okVerdict.Score {
		t.Errorf("probe verdict score = %d, want %d", rc.Score, okVerdict.Score)
	}
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("BreakerState = %q after a successful probe, want closed", s)
	}
}

func TestFailedProbeReopens(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, http.StatusBadGateway, schemas.ErrorBody{Code: 5020, Content: "upstream"})
	})
	c := newClient(t, srv.URL, WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 50 * time.Millisecond}))
	_, _ = c.Check(context.Background(), testReq)
	for i := 0; c.BreakerState() != "half-open"; i++ {
		if i == 1000 {
			t.Fatalf("breaker still %q after %d polls", c.BreakerState(), i)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := c.Check(context.Background(), testReq)
	if unavailable(t, err); errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("the half-open breaker refused the probe: %v", err)
	}
	if s := c.BreakerState(); s != "open" {
		t.Errorf("BreakerState = %q after a failed probe, want open", s)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2 (first failure and probe)", n)
	}
}

func TestCallerDeadlineShorterThanTimeout(t *testing.T) {
	var hits atomic.Int64
	srv := newStuckServer(t, &hits)
	// The client would wait an hour; only the caller's deadline can end these calls.
	c := newClient(t, srv.URL, WithTimeout(time.Hour),
		WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Minute}))
	check := func(budget time.Duration) (schemas.RiskCheck, error) {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		return checkWithGuard(t, c, ctx)
	}
	// A budget nearly spent before the call (2 ms, under FairBudget) ran out on the caller's
	// side, not riskflow's: the breaker does not count these.
	for range 4 {
		rc, err := check(2 * time.Millisecond)
		ue := unavailable(t, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded in the chain", err)
		}
		if ue.Reason != "caller's deadline passed before riskflow answered" {
			t.Errorf("reason = %q", ue.Reason)
		}
		assertFailVerdict(t, rc, 0)
	}
	if s := c.BreakerState(); s != "closed" {
		t.Fatalf("BreakerState = %q after calls given 2 ms, want closed", s)
	}
	// A caller that gives riskflow a fair budget (20 ms) and gets nothing is riskflow's
	// failure: a hung node opens the breaker for callers passing their own budget too (it
	// never did: every login of a verify service with a 30 ms budget waited the 30 ms).
	for range 2 {
		rc, err := check(20 * time.Millisecond)
		if ue := unavailable(t, err); !errors.Is(err, context.DeadlineExceeded) || ue.Reason != "caller's deadline passed before riskflow answered" {
			t.Errorf("err = %v, reason %q", err, ue.Reason)
		}
		assertFailVerdict(t, rc, 0)
	}
	if s := c.BreakerState(); s != "open" {
		t.Errorf("BreakerState = %q after 2 calls given 20 ms by the caller and unanswered, want open", s)
	}
	sent := hits.Load()
	rc, err := check(20 * time.Millisecond)
	if unavailable(t, err); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("err = %v, want ErrBreakerOpen", err)
	}
	assertFailVerdict(t, rc, 0)
	if n := hits.Load(); n != sent {
		t.Errorf("the open breaker let a request through (%d, then %d)", sent, n)
	}
}

func TestCallerCancel(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, srv.URL, WithTimeout(time.Hour),
		WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}))

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	rc, err := checkWithGuard(t, c, ctx)
	if ue := unavailable(t, err); !errors.Is(err, context.Canceled) || ue.Reason != "risk check canceled by the caller" {
		t.Errorf("err = %v, reason %q; want context.Canceled", err, ue.Reason)
	}
	assertFailVerdict(t, rc, 0)
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("BreakerState = %q after a canceled call, want closed", s)
	}

	// A context that is already done sends nothing.
	rc, err = c.Check(ctx, testReq)
	if unavailable(t, err); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	assertFailVerdict(t, rc, 0)
	select {
	case <-arrived:
		t.Error("a request was sent with a canceled context")
	default:
	}
}

func TestConnectionReuse(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Mix answers: bodies of error answers must be drained too.
		switch n.Add(1) % 3 {
		case 0:
			writeJSON(w, http.StatusBadRequest, schemas.ErrorBody{Code: 1001, Content: "ip: is required"})
		case 1:
			writeJSON(w, http.StatusOK, okVerdict)
		case 2:
			writeJSON(w, http.StatusServiceUnavailable, schemas.ErrorBody{Code: 5030, Content: "not ready"})
		}
	}))
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := newClient(t, srv.URL)
	const calls = 30
	for range calls {
		_, _ = c.Check(context.Background(), testReq)
	}
	if got := n.Load(); got != calls {
		t.Fatalf("server saw %d requests, want %d", got, calls)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d sequential calls opened %d connections, want 1", calls, got)
	}
}

func TestFailClosed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, schemas.ErrorBody{Code: 5030, Content: "not ready"})
	})
	c := newClient(t, srv.URL, WithFailPolicy(FailClosed()))
	rc, err := c.Check(context.Background(), testReq)
	unavailable(t, err)
	var api *APIError
	if !errors.As(err, &api) || api.Status != 503 {
		t.Errorf("err = %v, want an *APIError 503 inside", err)
	}
	if !reflect.DeepEqual(rc, schemas.RiskCheck{}) {
		t.Errorf("verdict = %+v, want the zero value", rc)
	}
}

func TestFailWithScore(t *testing.T) {
	c := newClient(t, deadURL(t), WithFailPolicy(FailWithScore(schemas.ScoreStepUp)))
	rc, err := c.Check(context.Background(), testReq)
	unavailable(t, err)
	assertFailVerdict(t, rc, schemas.ScoreStepUp)
}

func TestRateLimitedCountsAsFailure(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, http.StatusTooManyRequests, schemas.ErrorBody{Code: 4290, Content: "rate limited"})
	})
	c := newClient(t, srv.URL, WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Minute}))
	for range 3 {
		rc, err := c.Check(context.Background(), testReq)
		unavailable(t, err)
		assertFailVerdict(t, rc, 0)
	}
	if s := c.BreakerState(); s != "open" {
		t.Errorf("BreakerState = %q after 429s, want open", s)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestUnusableResponses(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"not json": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>hello</html>") },
		"bad score": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, schemas.RiskCheck{Content: "success", Score: 450})
		},
		"phone in a broken body": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"score":`+testPhone+`.5}`)
		},
		"score a string": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"code":0,"content":"success","score":"600","id":"1"}`)
		},
		"too large": func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte(" "), MaxResponseBytes))
			json.NewEncoder(w).Encode(okVerdict)
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		},
		"no content": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
		// JSON that is no verdict — a proxy's or sidecar's 200 in riskflow's place — decoded into
		// a zero RiskCheck: score 0 with no error, a pass the caller never heard was not riskflow's.
		"empty object": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) },
		"null":         func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `null`) },
		"another service's json": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":"ok","code":0}`)
		},
		"an error body with 200": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, schemas.ErrorBody{Code: 503, Content: "not ready"})
		},
		"no id": func(w http.ResponseWriter, r *http.Request) {
			rc := okVerdict
			rc.ID = ""
			writeJSON(w, http.StatusOK, rc)
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, newServer(t, h).URL)
			rc, err := c.Check(context.Background(), testReq)
			ue := unavailable(t, err)
			if !errors.Is(err, ErrBadResponse) || ue.Reason != "riskflow sent an unusable response" {
				t.Errorf("err = %v, reason %q; want ErrBadResponse", err, ue.Reason)
			}
			if name == "score a string" && !strings.Contains(err.Error(), "decode verdict: score: must be a number, got string") ||
				strings.Contains(err.Error(), "Go struct") || strings.Contains(err.Error(), "Go value") {
				t.Errorf("err = %v, want the member named, not encoding/json's Go type", err)
			}
			if name == "phone in a broken body" && !strings.Contains(err.Error(), "1380013****") {
				t.Errorf("err = %v, want the quoted number masked as 1380013****", err)
			}
			assertFailVerdict(t, rc, 0)
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, f := range map[string]func() (*Client, error){
		"no scheme":    func() (*Client, error) { return New("riskflow:8080", "k", "s") },
		"ftp":          func() (*Client, error) { return New("ftp://riskflow", "k", "s") },
		"no host":      func() (*Client, error) { return New("http://", "k", "s") },
		"no key":       func() (*Client, error) { return New("http://riskflow", "", "s") },
		"no secret":    func() (*Client, error) { return New("http://riskflow", "k", "") },
		"colon in key": func() (*Client, error) { return New("http://riskflow", "k:1", "s") },
		// The API refuses a query parameter on /v1/risk/check: joined to every request, it would
		// have failed every check.
		"query":        func() (*Client, error) { return New("http://riskflow/risk/?region=cn", "k", "s") },
		"zero timeout": func() (*Client, error) { return New("http://riskflow", "k", "s", WithTimeout(0)) },
		"score not a level": func() (*Client, error) {
			return New("http://riskflow", "k", "s", WithFailPolicy(FailWithScore(450)))
		},
	} {
		if c, err := f(); err == nil || c != nil {
			t.Errorf("%s: New = %v, %v; want an error", name, c, err)
		}
	}
}

func TestWithHTTPClient(t *testing.T) {
	var used atomic.Bool
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, okVerdict) })
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err := newClient(t, srv.URL, WithHTTPClient(hc)).Check(context.Background(), testReq); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !used.Load() {
		t.Error("the HTTP client given with WithHTTPClient was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestLoggerSeesStateChanges(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	var healthy atomic.Bool
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, okVerdict)
	})
	c := newClient(t, srv.URL, WithLogger(logger),
		WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 20 * time.Millisecond}))
	_, _ = c.Check(context.Background(), testReq)
	healthy.Store(true)
	for i := 0; c.BreakerState() != "half-open"; i++ {
		if i == 1000 {
			t.Fatalf("breaker still %q after %d polls", c.BreakerState(), i)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.Check(context.Background(), testReq); err != nil {
		t.Fatalf("probe: %v", err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{
		"level=WARN msg=\"riskflow circuit breaker state changed\" breaker=riskflow-check from=closed to=open",
		"level=INFO msg=\"riskflow circuit breaker state changed\" breaker=riskflow-check from=open to=half-open",
		"from=half-open to=closed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testPhone) {
		t.Errorf("log leaks the phone number:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestConcurrentChecks(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, okVerdict) })
	c := newClient(t, srv.URL)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				if _, err := c.Check(context.Background(), testReq); err != nil {
					t.Errorf("Check: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMaskPhones(t *testing.T) {
	for _, tc := range []struct{ in, phone, want string }{
		{`phone: "13800138000" is bad`, "13800138000", `phone: "1380013****" is bad`},
		{`phone: "+86 138 0013 8000" is bad`, "+86 138 0013 8000", `phone: "+86 138**********" is bad`},
		{`phone: "1380013800" is bad`, "", `phone: "1380013***" is bad`},
		{"body larger than 1048576 bytes", "", "body larger than 1048576 bytes"},
		{"no digits", testPhone, "no digits"},
		{"trailing 8613800138000", "", "trailing 8613800******"},
		// Another number, or the caller's in another form, as something in front of riskflow
		// may echo it: masked all the same (schemas.MaskPhones).
		{`phone: 138 0013 8000 is bad`, testPhone, `phone: <phone> is bad`},
		{`phone: +86-139-1111-2222 is bad`, testPhone, `phone: <phone> is bad`},
		{"phone: １３８００１３８０００ is bad", testPhone, `phone: <phone> is bad`},
	} {
		if got := maskPhones(tc.in, tc.phone); got != tc.want {
			t.Errorf("maskPhones(%q, %q) = %q, want %q", tc.in, tc.phone, got, tc.want)
		}
	}
}

// A verdict cut short (the connection broke mid-body) is a failure the breaker counts, and its
// error says what was being done, not a bare "unexpected EOF".
func TestVerdictCutShort(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "300")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"code":0,"content":"succ`)
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	})
	c := newClient(t, srv.URL, WithBreakerSettings(BreakerSettings{ConsecutiveFailures: 2}))
	for range 2 {
		rc, err := c.Check(context.Background(), testReq)
		unavailable(t, err)
		assertFailVerdict(t, rc, 0)
		if !strings.Contains(err.Error(), "read the verdict: unexpected EOF") {
			t.Errorf("err = %v, want it to say the verdict could not be read", err)
		}
	}
	if c.BreakerState() != "open" {
		t.Errorf("breaker %s after two verdicts cut short, want open", c.BreakerState())
	}
}

// closingServer answers the first request of each connection (okVerdict, or a publish's 202) and
// closes the connection when the next request on it arrives, unanswered: what a verify service's
// pooled connection meets when the API node dropped it (restarted, or shed it over api.max_conns)
// just as the request went out. It returns the server's address and a count of requests read.
func closingServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	body, _ := json.Marshal(okVerdict)
	var reads atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					reads.Add(1)
					if i > 0 {
						return // closed under the client's second request
					}
					status, b := "200 OK", body
					if strings.HasSuffix(req.URL.Path, "/events") {
						status, b = "202 Accepted", []byte(`{"accepted":1}`)
					}
					fmt.Fprintf(conn, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, len(b), b)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &reads
}

// A check sent on a pooled connection the server closed under it is sent again on a new one: the
// connection's loss says nothing of riskflow's health, and the login must not get the fail
// policy's verdict for it. The same holds for PublishEvents (events are idempotent by event id).
func TestCheckRetriedOnAConnectionClosedUnderIt(t *testing.T) {
	url, reads := closingServer(t)
	c := newClient(t, url, WithFailPolicy(FailClosed()))
	for i := range 3 {
		rc, err := c.Check(context.Background(), testReq)
		if err != nil {
			t.Fatalf("check %d: %v (the server had read %d requests)", i+1, err, reads.Load())
		}
		if rc.ID != okVerdict.ID {
			t.Fatalf("check %d: verdict %+v", i+1, rc)
		}
	}
	if got := reads.Load(); got != 5 {
		t.Errorf("the server read %d requests, want 5 (3 checks, 2 of them sent again on a new connection)", got)
	}

	url, reads = closingServer(t)
	c = newClient(t, url)
	ev := schemas.VerifyEvent{EventID: "e-1", TS: time.Now(), AppID: "app-1", Flow: schemas.FlowOneClickLogin, Phone: testPhone,
		IP: testReq.IP, Outcome: schemas.OutcomeSuccess}
	for i := range 2 {
		if err := c.PublishEvents(context.Background(), []schemas.VerifyEvent{ev}); err != nil {
			t.Fatalf("publish %d: %v", i+1, err)
		}
	}
	if got := reads.Load(); got != 3 {
		t.Errorf("the server read %d publish requests, want 3", got)
	}
}

// A base URL of http:// for a node serving TLS: the error says what the server said ("Client sent
// an HTTP request to an HTTPS server."), where it had said only "HTTP 400: Bad Request", which
// reads as a check riskflow found wrong. A plain-text answer's phone numbers are masked as the
// API's own errors' are.
func TestPlainHTTPToATLSNodeIsSaid(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c, err := New("http://"+srv.Listener.Addr().String(), "app", "secret", WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(context.Background(), schemas.CheckRequest{Phone: "+8613800138000", IP: netip.MustParseAddr("1.2.3.4"), AppID: "app"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
		t.Errorf("Check = %v, want a 400 saying the request was plain HTTP to HTTPS", err)
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream refused +8613800138000\x01 — and more\nsecond line", http.StatusBadGateway)
	}))
	defer proxy.Close()
	c, err = New(proxy.URL, "app", "secret", WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(context.Background(), schemas.CheckRequest{Phone: "+8613800138000", IP: netip.MustParseAddr("1.2.3.4"), AppID: "app"})
	if err == nil || !strings.Contains(err.Error(), "upstream refused") || strings.Contains(err.Error(), "13800138000") || strings.Contains(err.Error(), "second line") || strings.Contains(err.Error(), "\x01") {
		t.Errorf("Check via a proxy's text answer = %q, want its first line, the number masked", err)
	}
}

// A node whose certificate is from a private CA: WithTLSConfig gives the client's own transport
// its roots (the tuned transport and the refused redirects kept); without them the check fails as
// unavailable, naming the certificate; a TLS configuration beside WithHTTPClient is refused.
func TestWithTLSConfigPrivateCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, okVerdict)
	}))
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := newClient(t, srv.URL, WithTLSConfig(&tls.Config{RootCAs: roots}))
	if rc, err := c.Check(context.Background(), testReq); err != nil || rc.Score != okVerdict.Score {
		t.Errorf("with the CA: %+v, %v", rc, err)
	}
	var ue *UnavailableError
	if _, err := newClient(t, srv.URL).Check(context.Background(), testReq); !errors.As(err, &ue) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want unavailable naming the certificate", err)
	}
	if _, err := New(srv.URL, "app", "s", WithTLSConfig(&tls.Config{RootCAs: roots}), WithHTTPClient(srv.Client())); err == nil {
		t.Error("WithTLSConfig beside WithHTTPClient accepted")
	}
}
