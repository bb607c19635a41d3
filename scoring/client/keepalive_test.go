package client_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/client"
)

// closingServer answers the first request of each connection and keeps it alive; the second it
// reads, then closes the connection without an answer — a server that closed a kept-alive
// connection (its idle timeout, api.max_conns, a node told to stop) as the request went out on it.
type closingServer struct {
	ln       net.Listener
	answer   string // the HTTP response to the first request
	mu       sync.Mutex
	conns    int
	requests int
}

func newClosingServer(t *testing.T, status int, body string) *closingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &closingServer{ln: ln, answer: fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *closingServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		if n > 0 {
			return // closed as the request came: no answer
		}
		io.WriteString(c, s.answer)
	}
}

func (s *closingServer) counts() (conns, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.requests
}

// A check and a publish sent on a pooled connection that the server closes as they arrive are
// sent again on a new connection (the transport replays requests marked idempotent): the caller
// sees the answer, not an EOF — neither a fail-policy verdict nor a publish error. A POST is
// replayed only so marked; a check changes nothing and events are deduplicated by app and id.
func TestRequestOnAConnectionTheServerClosedIsSentAgain(t *testing.T) {
	ctx := context.Background()
	t.Run("check", func(t *testing.T) {
		s := newClosingServer(t, http.StatusOK, `{"code":0,"content":"success","score":300,"tags":["t"],"id":"v1"}`)
		c, err := client.New("http://"+s.ln.Addr().String(), "app-1", "s", client.WithTimeout(10*time.Second), client.WithFailPolicy(client.FailClosed()))
		if err != nil {
			t.Fatal(err)
		}
		req := schemas.CheckRequest{Phone: "13812348000", IP: netip.MustParseAddr("1.2.3.4"), AppID: "app-1"}
		for i := range 3 {
			rc, err := c.Check(ctx, req)
			if err != nil || rc.Score != 300 {
				t.Fatalf("check %d: %+v %v", i, rc, err)
			}
		}
		// Checks 2 and 3 each went out on the connection the one before was answered on, then again on a new one.
		if conns, requests := s.counts(); conns != 3 || requests != 5 {
			t.Errorf("%d connections, %d requests; want 3 and 5", conns, requests)
		}
	})
	t.Run("publish", func(t *testing.T) {
		s := newClosingServer(t, http.StatusAccepted, `{"code":0,"content":"accepted","accepted":1}`)
		c, err := client.New("http://"+s.ln.Addr().String(), "app-1", "s")
		if err != nil {
			t.Fatal(err)
		}
		ev := schemas.VerifyEvent{EventID: "e1", TS: time.Now(), AppID: "app-1", Flow: schemas.FlowOneClickLogin,
			Phone: "13812348000", IP: netip.MustParseAddr("1.2.3.4"), Outcome: "success"}
		for i := range 2 {
			if err := c.PublishEvents(ctx, []schemas.VerifyEvent{ev}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		if conns, requests := s.counts(); conns != 2 || requests != 3 {
			t.Errorf("%d connections, %d requests; want 2 and 3", conns, requests)
		}
	})
}
