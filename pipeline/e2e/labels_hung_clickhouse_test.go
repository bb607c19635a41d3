//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// An admin labelling through an API node whose ClickHouse hangs gets an answer to every request,
// the ones sent at once included. Each request waited for the one before it to give up on
// ClickHouse (5 s each, one at a time): the third and later ran past the server's write timeout,
// and their connections were closed without an answer; the second's budget ran out in the queue.
func TestLabelsAnsweredWhileClickHouseHangs(t *testing.T) {
	p, addr := apiOnHungClickHouse(t)
	const n = 4
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`[{"app_id":"it-app","decision_id":"d-%d","label":"fraud"}]`, i)
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/admin/labels", bytes.NewReader([]byte(body)))
			req.SetBasicAuth("it-admin", "it-admin-secret")
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
			if err != nil {
				answers[i] = answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers[i] = answer{code: resp.StatusCode, body: string(b)}
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil {
			t.Errorf("label request %d: no answer: %v", i, a.err)
			continue
		}
		if a.code != http.StatusServiceUnavailable {
			t.Errorf("label request %d: %d %s, want 503 (ClickHouse does not answer)", i, a.code, a.body)
		}
		// The cause, ClickHouse not answering, not the request's budget spent queueing for it.
		if strings.Contains(a.body, "context deadline exceeded") {
			t.Errorf("label request %d: %s: its budget ran out waiting for the other requests' attempts", i, a.body)
		}
	}
	if !p.alive() {
		t.Fatalf("api node exited:\n%s", tail(p.log, 30))
	}
}

// The console's pages on an API node whose ClickHouse hangs answer, late but with a page. Opened
// at once, they wait on ClickHouse one after another (5 s each): the rules page ran past the
// server's 10 s write timeout and its connection was closed without an answer (the others
// answered at 9.98 s, just inside it).
func TestConsoleAnswersWhileClickHouseHangs(t *testing.T) {
	p, addr := apiOnHungClickHouse(t)
	base := "http://" + addr
	c := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, base+"/console/login",
		bytes.NewReader([]byte("name=it-admin&secret=it-admin-secret&next=/console/overview")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("console login: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("console login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// An admin opening the console's pages at once, as tabs do.
	pages := []string{"/console/overview", "/console/rules", "/console/lists", "/console/investigate", "/console/rules/draft"}
	var wg sync.WaitGroup
	for _, page := range pages {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, base+page, nil)
			for _, ck := range resp.Cookies() {
				req.AddCookie(ck)
			}
			r, err := c.Do(req)
			if err != nil {
				t.Errorf("%s: no answer: %v", page, err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode >= 500 && r.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s: %d", page, r.StatusCode)
			}
		})
	}
	wg.Wait()
	if !p.alive() {
		t.Fatalf("api node exited:\n%s", tail(p.log, 30))
	}
}

// apiOnHungClickHouse starts a ready API node with an admin key (it-admin:it-admin-secret) whose
// ClickHouse takes connections and never answers, and returns it with its address.
func apiOnHungClickHouse(t *testing.T) (*proc, string) {
	t.Helper()
	e := newEnv(t)
	addr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_CLICKHOUSE_ADDR="+testaddr.NewHung(t).Addr, "RISKFLOW_API_ADMIN_KEYS=it-admin:it-admin-secret")
	p := e.start("api", "--listen", addr)
	if ok, code, body := waitReadyz(addr, time.Minute, func(code int, _ string) bool { return code == http.StatusOK }); !ok {
		t.Fatalf("api node not ready: %d %s\n%s", code, body, tail(p.log, 30))
	}
	return p, addr
}
