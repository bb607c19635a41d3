package chsink

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// DialError is a connection to ClickHouse that could not be opened: nothing listens at the
// address, or it did not answer within clickhouse.dial_timeout. Its text names the key.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return "clickhouse.addr " + e.Addr + ": " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// ClickHouse error codes of credentials the server refused: 18.16 says which part is wrong,
// current releases only that authentication failed.
const (
	codeUnknownUser          = 192
	codeWrongPassword        = 193
	codeAuthenticationFailed = 516
)

// AuthFailed reports whether err is the server refusing clickhouse.username and password.
func AuthFailed(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case codeUnknownUser, codeWrongPassword, codeAuthenticationFailed:
		return true
	}
	return false
}

// HandshakeTimedOut reports whether err is a server that took the connection and never answered
// the native protocol's hello: what ClickHouse's HTTP port (8123) does with it.
func HandshakeTimedOut(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && strings.Contains(err.Error(), "handshake: ")
}

// insertContext bounds one INSERT (PrepareBatch … Send) by Config.WriteTimeout and by ctx, like
// withTimeout, except that the caller never cancels it early: done only detaches it from ctx,
// and it ends at its deadline. clickhouse-go's batch.Send watches its context from a goroutine
// that closes the connection when the context is done; a cancel just after Send returned can
// reach that goroutine first and close a connection already back in the pool, and the next
// INSERT on it fails with "use of closed network connection" (a failure the breaker counts).
// See github.com/ClickHouse/clickhouse-go/pull/2032.
func (s *Store) insertContext(ctx context.Context) (_ context.Context, done func()) {
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ictx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	stop := context.AfterFunc(ctx, cancel) // the caller giving up still stops the INSERT
	return ictx, func() { stop() }
}

// dialer opens the Store's connections. Every write on them must finish within writeTimeout:
// the driver bounds a whole INSERT by its context only in its final Send, while the blocks the
// archiver sends before it (batch.Flush, see insertColumns) would otherwise wait for ever on a
// server that stopped reading.
func dialer(dialTimeout, writeTimeout time.Duration) func(ctx context.Context, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, &DialError{Addr: addr, Err: err}
		}
		return &writeDeadlineConn{Conn: c, timeout: writeTimeout}, nil
	}
}

// writeDeadlineConn sets a write deadline of timeout before each Write. It passes the socket on
// (SyscallConn): before it hands out a pooled connection, clickhouse-go reads the socket to see
// whether the server closed it, and skips that check for a connection that is not a syscall.Conn
// — after a ClickHouse restart, the first query on each idle connection would then fail with a
// broken pipe (a 500 from the console, a failed INSERT counted by the breaker).
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// SyscallConn returns the socket's raw connection, for the driver's liveness check.
func (c *writeDeadlineConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("chsink: the connection has no socket to check")
	}
	return sc.SyscallConn()
}
