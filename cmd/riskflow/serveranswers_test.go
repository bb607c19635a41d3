package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// rawAnswer sends request as written on a new connection to addr (over TLS when tlsConf is set)
// and reads the answer.
func rawAnswer(t *testing.T, addr string, tlsConf *tls.Config, request string) (*http.Response, []byte) {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: no answer: %v", clipRequest(request), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: %v", clipRequest(request), err)
	}
	return resp, body
}

func clipRequest(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// answerDocumented fails t unless the answer is the API's Error of its status, or an answer the
// HTTP server gives before any route that the OpenAPI document's description names as it comes:
// "<status> (<its Content-Type>", "<status> (empty" or "<status> (no Content-Type".
func answerDocumented(t *testing.T, description, request string, resp *http.Response, body []byte) {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "application/json" {
		var eb schemas.ErrorBody
		want := resp.StatusCode // an error's code; 0 on success
		if want < 300 {
			want = 0
		}
		if err := json.Unmarshal(body, &eb); err != nil || eb.Code != want || eb.Content == "" {
			t.Errorf("%q: %d %s, not the API's Error", clipRequest(request), resp.StatusCode, body)
		}
		return
	}
	kind := mt
	switch {
	case ct == "" && len(body) == 0:
		kind = "empty"
	case ct == "":
		kind = "no Content-Type"
	}
	if want := fmt.Sprintf("%d (%s", resp.StatusCode, kind); !strings.Contains(description, want) {
		t.Errorf("%q: answered %d %q (%s), which the OpenAPI document does not describe (its description names no %q)",
			clipRequest(request), resp.StatusCode, body, kind, want)
	}
}

// Every answer the API's address gives is one the OpenAPI document describes: the API's Error for
// whatever reaches a handler, and what net/http answers by itself before any handler — a request
// that is not HTTP/1.x, an Expect it does not know, plain HTTP sent to a node serving TLS — named in
// the document's description with its status and type. `OPTIONS *` was answered by net/http's
// own handler, 200 with no body, which the document has no word of: it is the API's 404 now, on
// the ops port too.
func TestServerAnswersBeforeAnyRouteAreDocumented(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	description := doc.Info.Description
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	apiHandler := api.New(api.Config{Keys: map[string]string{"app1": "secret1"}}, a.scorer, nil, api.WithLogger(slog.New(slog.DiscardHandler)))

	requests := []string{
		"OPTIONS * HTTP/1.1\r\nHost: riskflow\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"CONNECT riskflow.example:443 HTTP/1.1\r\nHost: riskflow.example:443\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: riskflow\r\nX-Big: " + strings.Repeat("x", 20<<10) + "\r\n\r\n",
		"POST /v1/risk/check HTTP/1.1\r\nHost: riskflow\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET /readyz HTTP/2.0\r\nHost: riskflow\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: riskflow\r\nExpect: something-else\r\n\r\n",
		"GARBAGE\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET /readyz HTTP/1.1\r\n\r\n",
		"POST /v1/risk/check HTTP/1.1\r\nHost: riskflow\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
	}
	// A process of its own for each server: each registers its metrics.
	node := func() *app {
		return &app{cfg: cfg, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	}
	serve := func(t *testing.T, a *app, h http.Handler) *apiServer {
		ln, err := a.listenAPI("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := a.serveStarting(ln)
		t.Cleanup(s.close)
		if h != nil {
			s.use(h)
		}
		return s
	}
	for _, c := range []struct {
		name    string
		handler http.Handler
	}{{"api", apiHandler}, {"starting", nil}} {
		t.Run(c.name, func(t *testing.T) {
			s := serve(t, node(), c.handler)
			for _, req := range requests {
				resp, body := rawAnswer(t, s.addr, nil, req)
				answerDocumented(t, description, req, resp, body)
			}
		})
	}
	t.Run("ops", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := node().opsServer()
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
		for _, req := range requests {
			resp, body := rawAnswer(t, ln.Addr().String(), nil, req)
			answerDocumented(t, description, req, resp, body)
		}
	})
	t.Run("tls", func(t *testing.T) {
		dir := tempDir(t)
		certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		writeCert(t, certFile, keyFile, 1)
		b := node()
		b.cfg.API.TLSCert, b.cfg.API.TLSKey = certFile, keyFile
		s := serve(t, b, apiHandler)
		for _, req := range requests {
			resp, body := rawAnswer(t, s.addr, &tls.Config{InsecureSkipVerify: true}, req)
			answerDocumented(t, description, req, resp, body)
		}
		// Plain HTTP to the TLS port: net/http answers it before the handshake fails.
		req := "GET /readyz HTTP/1.1\r\nHost: riskflow\r\n\r\n"
		resp, body := rawAnswer(t, s.addr, nil, req)
		answerDocumented(t, description, req, resp, body)
	})
}
