package api

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

type passChecker struct{}

func (passChecker) Check(*schemas.CheckRequest) (schemas.RiskCheck, error) {
	return schemas.RiskCheck{}, nil
}

// Large bodies being read share a budget of bytes. An app key's client sending 1 MiB bodies on
// many connections, each held back by its last byte, made the server hold them all (a gigabyte
// for a thousand) until its read timeout, past a pod's memory limit; now a large body that finds
// the budget spent is answered 503 with Retry-After before it is read, while checks — small
// bodies — go on being answered, and the budget is whole again once those bodies end.
func TestLargeBodiesShareABudget(t *testing.T) {
	const mib = 1 << 20
	s := New(Config{Keys: map[string]string{"app1": "secret1"}, MaxBodyBytes: mib}, passChecker{}, nil)
	s.bodies = newByteBudget(4 * mib)
	ts := httptest.NewServer(s)
	defer ts.Close()

	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/risk/check HTTP/1.1\r\nHost: riskflow\r\nAuthorization: Basic YXBwMTpzZWNyZXQx\r\nContent-Length: %d\r\n\r\n%s", mib, strings.Repeat(" ", 100))
		held = append(held, c)
	}
	waitBudget := func(want int64) {
		for i := 0; i < 5000 && s.bodies.left.Load() != want; i++ {
			time.Sleep(time.Millisecond) // the handlers take their share once the headers are in
		}
	}
	waitBudget(0)

	check := `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1"}`
	post := func(body string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/risk/check", strings.NewReader(body))
		req.SetBasicAuth("app1", "secret1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	large := check + strings.Repeat(" ", mib-len(check))
	resp, body := post(large)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, `"content":"body: `) {
		t.Errorf("a large body while the budget is spent: %d, Retry-After %q, %s; want 503 naming the body, with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := post(check); resp.StatusCode != http.StatusOK {
		t.Errorf("a check while the budget is spent: %d %s", resp.StatusCode, body)
	}

	for _, c := range held {
		c.Close()
	}
	waitBudget(4 * mib)
	if resp, body := post(large); resp.StatusCode != http.StatusOK {
		t.Errorf("a large body once the others ended: %d %s", resp.StatusCode, body)
	}
	if left := s.bodies.left.Load(); left != 4*mib {
		t.Errorf("budget left after every body ended: %d, want %d", left, 4*mib)
	}
}

// A body of unknown length (chunked) is read as it comes: small, it takes nothing from the budget;
// past freeBodyBytes, it takes the limit.
func TestChunkedBodyTakesTheBudgetOnlyWhenLarge(t *testing.T) {
	const mib = 1 << 20
	s := New(Config{Keys: map[string]string{"app1": "secret1"}, MaxBodyBytes: mib}, passChecker{}, nil)
	s.bodies = newByteBudget(mib / 2) // less than the limit: a large chunked body cannot take it
	ts := httptest.NewServer(s)
	defer ts.Close()
	check := `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1"}`
	for _, c := range []struct {
		body string
		want int
	}{{check, http.StatusOK}, {check + strings.Repeat(" ", 100<<10), http.StatusServiceUnavailable}} {
		// io.MultiReader hides the length: the client sends it chunked.
		req, _ := http.NewRequest("POST", ts.URL+"/v1/risk/check", io.MultiReader(bytes.NewReader([]byte(c.body))))
		req.SetBasicAuth("app1", "secret1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("chunked body of %d bytes: %d, want %d", len(c.body), resp.StatusCode, c.want)
		}
	}
	if left := s.bodies.left.Load(); left != mib/2 {
		t.Errorf("budget left: %d, want %d", left, mib/2)
	}
}
