package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// apiServer is the API's HTTP server, listening from the start of the process: until the API
// takes it over (use), it answers /healthz, /readyz and /metrics as the ops port does, serves
// /v1/openapi.yaml, and answers every other route 503 naming what the process waits for. A process with the api role that waits for
// the broker is thus alive and observable, and a verify service's check fails at once instead of
// being refused a connection — or hanging.
type apiServer struct {
	hs      *http.Server
	addr    string
	handler atomic.Pointer[http.Handler]
	errc    chan error    // Serve's end
	errs    *serverErrors // the server's own error lines
}

// listenAPI listens on the API's address, with TLS when api.tls_cert is set.
func (a *app) listenAPI(listen string) (net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s (api.listen): %w%s", listen, err, addrInUseHint(err, "--listen, api.listen or RISKFLOW_API_LISTEN (make run: RISKFLOW_API_LISTEN=127.0.0.1:8081 make run)"))
	}
	if a.cfg.API.TLSCert != "" {
		certs, err := newCertReloader(a.cfg.API.TLSCert, a.cfg.API.TLSKey, a.log)
		if err != nil {
			ln.Close()
			return nil, configError{fmt.Errorf("api.tls_cert: %w", err)}
		}
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12, CipherSuites: apiCipherSuites})
	}
	return ln, nil
}

// apiCipherSuites are the TLS 1.2 suites the API offers: ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305. Go's defaults add the ECDHE CBC-SHA1 suites (held-out run: a TLS 1.2 client
// offering only TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA was served), which no verify service needs.
// TLS 1.3's suites are not configurable and are all AEAD.
var apiCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// certReloader serves the key pair of api.tls_cert and api.tls_key, loaded again when either
// file changes (modification time or size, looked at on each handshake): a rotated certificate
// (cert-manager, a renewal) is served without a restart, where the pair read at start was served
// until it expired. A pair that does not load (half-written, mismatched) leaves the previous one
// in use, logged once per change of the files.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             string // the files' stamp when last loaded or tried
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log, stamp: fileStamp(certFile, keyFile)}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.cert = &cert
	c.checkValidity(&cert, time.Now())
	return c, nil
}

// checkValidity logs a certificate outside its validity at now: it is served all the same (the
// previous one may be no better, and a node without one serves nobody), but the node had said
// nothing while every client refused it, and its log held only "tls: bad certificate".
func (c *certReloader) checkValidity(cert *tls.Certificate, now time.Time) {
	leaf := cert.Leaf
	if leaf == nil {
		return
	}
	switch {
	case now.After(leaf.NotAfter):
		c.log.Warn("api.tls_cert is expired: clients refuse it", "cert", c.certFile, "not_after", leaf.NotAfter.UTC())
	case now.Before(leaf.NotBefore):
		c.log.Warn("api.tls_cert is not valid yet: clients refuse it (is this node's clock, or the issuer's, wrong?)", "cert", c.certFile, "not_before", leaf.NotBefore.UTC())
	}
}

// loadKeyPair loads api.tls_cert and api.tls_key, saying what is wrong where crypto/tls's error
// does not: "tls: failed to parse private key" was all an encrypted key got, and "tls: private
// key does not match public key" all a chain written intermediate first (the server's
// certificate must come first) got, neither naming a file.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		return cert, nil
	}
	keyPEM, kerr := os.ReadFile(keyFile)
	certPEM, cerr := os.ReadFile(certFile)
	if kerr != nil || cerr != nil {
		return cert, err // the error names the file it could not read
	}
	if blk, _ := pem.Decode(keyPEM); blk != nil && (blk.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED")) {
		return cert, fmt.Errorf("api.tls_key %s is encrypted, and riskflow takes no passphrase: give it the key decrypted (openssl pkey -in KEY -out KEY.plain), readable by riskflow's user only", keyFile)
	}
	if strings.Contains(err.Error(), "does not match") {
		rest, n := certPEM, 0
		for {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			if n++; n > 1 {
				if _, merr := tls.X509KeyPair(pem.EncodeToMemory(blk), keyPEM); merr == nil {
					return cert, fmt.Errorf("api.tls_key %s is the key of certificate %d of api.tls_cert %s, not of its first: the server's certificate goes first, then its intermediates", keyFile, n, certFile)
				}
			}
		}
		return cert, fmt.Errorf("api.tls_key %s is not the key of api.tls_cert %s (its first certificate): %w", keyFile, certFile, err)
	}
	return cert, fmt.Errorf("api.tls_cert %s, api.tls_key %s: %w", certFile, keyFile, err)
}

// fileStamp is the modification times and sizes of files ("" for one that cannot be read).
func fileStamp(files ...string) string {
	var b strings.Builder
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		} else {
			b.WriteString("-;")
		}
	}
	return b.String()
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp := fileStamp(c.certFile, c.keyFile)
	c.mu.Lock()
	defer c.mu.Unlock()
	if stamp != c.stamp {
		c.stamp = stamp
		cert, err := loadKeyPair(c.certFile, c.keyFile)
		if err != nil {
			c.log.Error("api.tls_cert changed but does not load: the previous certificate is still served", "err", err)
		} else {
			c.cert = &cert
			c.log.Info("api.tls_cert reloaded", "cert", c.certFile)
			c.checkValidity(&cert, time.Now())
		}
	}
	return c.cert, nil
}

// addrInUseHint tells what to do when another process holds the port: which setting moves it.
func addrInUseHint(err error, setting string) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	return fmt.Sprintf(" (another process holds that port — a second riskflow? Give another address with %s; port 0 picks a free one)", setting)
}

// apiWriteTimeout bounds a request from the end of its headers to the end of its answer: the body's
// read (ReadTimeout, 5 s), the handler's own budget (10 s for the admin routes and a console page,
// after the console's 2 s session check) and the write. An answer written after it is lost: the
// connection closes without one. At 10 s, the budget of the routes itself, an admin whose
// ClickHouse hung got no answer instead of the 503 or the page saying so (held-out run: console
// pages opened at once on such a node). Checks answer in milliseconds; a client that reads its
// answer slowly is the ConnGuard's to bound.
const apiWriteTimeout = 30 * time.Second

// serveStarting serves ln with the starting handler until use.
func (a *app) serveStarting(ln net.Listener) *apiServer {
	s := &apiServer{addr: ln.Addr().String(), errc: make(chan error, 1), errs: newServerErrors(a.log)}
	var starting http.Handler = a.startingHandler()
	s.handler.Store(&starting)
	guard := api.NewConnGuard(a.cfg.API.MaxConns, a.log.With("role", "api")) // one client cannot hold every file descriptor
	guard.Register(a.reg)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.handler.Load()).ServeHTTP(w, r) })
	s.hs = &http.Server{
		Handler:           closeAged(h, a.cfg.API.MaxConnAge.D(), time.Now),
		ConnContext:       connBorn(time.Now),
		ConnState:         guard.ConnState,
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(s.errs, "", 0),
		// OPTIONS * is the API's to answer (a 404, an Error as the document says), not net/http's
		// own 200 with no body, which the OpenAPI document has no word of.
		DisableGeneralOptionsHandler: true,
	}
	a.log.Info("api address listening while the process starts", "addr", s.addr, "tls", a.cfg.API.TLSCert != "")
	go func() { s.errc <- s.hs.Serve(ln) }()
	return s
}

// connBornKey keys the time a connection was accepted in its requests' contexts (connBorn).
type connBornKey struct{}

// connBorn is an http.Server's ConnContext that notes when each connection was accepted.
func connBorn(now func() time.Time) func(ctx context.Context, _ net.Conn) context.Context {
	return func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connBornKey{}, now())
	}
}

// closeAged answers with Connection: close on a connection older than maxAge (0: never), so that
// the client opens a new one for its next request — which a layer-4 balancer may send to another
// node: a verify service's pooled connections otherwise stay on the nodes they were opened to,
// and nodes added by a scale-out or a rollout get none of its checks. Its requests' contexts
// carry their connection's birth (connBorn).
func closeAged(h http.Handler, maxAge time.Duration, now func() time.Time) http.Handler {
	if maxAge <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if born, ok := r.Context().Value(connBornKey{}).(time.Time); ok && now().Sub(born) >= maxAge {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// use hands the server to the API: requests from now on, on new connections and kept-alive
// ones, go to h.
func (s *apiServer) use(h http.Handler) { s.handler.Store(&h) }

// close stops a server the API never took over (the process failed to start).
func (s *apiServer) close() {
	_ = s.hs.Close()
	<-s.errc
}

// metricsElsewhere is the API's option that leaves /metrics to the ops port when ops.listen is
// set: the API's address is the one verify services reach, and the metrics' rule ids and hit
// counts show how the detection works.
func (a *app) metricsElsewhere() []api.Option {
	if a.cfg.Ops.Listen == "" {
		return nil
	}
	return []api.Option{api.WithMetricsElsewhere(a.opsWhere())}
}

// opsWhere names the ops port in answers: ops.listen (ADDR).
func (a *app) opsWhere() string { return "ops.listen (" + a.cfg.Ops.Listen + ")" }

// startingHandler is what the API's address answers while the process starts.
func (a *app) startingHandler() http.Handler {
	ops := a.opsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && a.cfg.Ops.Listen != "" { // as the API answers it, whatever the method (metricsElsewhere)
			opsJSON(w, http.StatusNotFound, schemas.ErrorBody{Code: http.StatusNotFound,
				Content: api.MetricsElsewhere(r.Method, a.opsWhere())})
			return
		}
		if allow, content, ok := api.NotAllowed(r.Method, r.URL.Path); ok {
			// As the API answers it (an Error with Allow), not net/http's text/plain 405, and
			// on every route: a DELETE of an admin route was "not ready", to be sent again.
			w.Header().Set("Allow", allow)
			opsJSON(w, http.StatusMethodNotAllowed, schemas.ErrorBody{Code: http.StatusMethodNotAllowed, Content: content})
			return
		}
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics", "/v1/openapi.yaml":
			if r.URL.Path == "/v1/openapi.yaml" {
				// The document is static: a client generator need not wait for the state. It
				// takes no query parameter, as the started node's.
				if _, err := api.Query(r); err != nil {
					opsJSON(w, http.StatusBadRequest, schemas.ErrorBody{Code: http.StatusBadRequest, Content: err.Error()})
					return
				}
				w.Header().Set("Content-Type", "application/yaml")
				w.Header().Set("Content-Length", strconv.Itoa(len(api.OpenAPI)))
				w.WriteHeader(http.StatusOK)
				w.Write(api.OpenAPI)
				return
			}
			ops.ServeHTTP(w, r)
			return
		}
		why := "starting"
		if err := a.health.ready(); err != nil {
			why = err.Error()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(api.NotReadyRetryAfter/time.Second)))
		opsJSON(w, http.StatusServiceUnavailable, schemas.ErrorBody{Code: http.StatusServiceUnavailable, Content: "not ready: " + why})
	})
}

// serverErrors is the API server's ErrorLog. net/http writes a line there for each connection whose
// TLS handshake fails — a load balancer's or Kubernetes' TCP probe, a port scanner, a client
// speaking plain HTTP — and each was a warning: a TCP health check every few seconds, or a scan
// of a thousand connections a second, filled the log with lines naming nothing riskflow can fix.
// Each kind of line (serverErrorKindOf) is logged when first seen, then at most once per
// serverErrorEvery with the number of lines held back since.
type serverErrors struct {
	log   *slog.Logger
	now   func() time.Time
	lines atomic.Int64 // lines written to it (for tests)
	mu    sync.Mutex
	kinds map[string]*serverErrorKind
}

type serverErrorKind struct {
	logged time.Time
	held   int // lines of the kind not logged since
}

// serverErrorEvery is how often at most one kind of the server's error lines is logged.
const serverErrorEvery = time.Minute

// maxServerErrorKinds bounds the kinds tracked; lines of further kinds share one.
const maxServerErrorKinds = 64

func newServerErrors(log *slog.Logger) *serverErrors {
	return &serverErrors{log: log, now: time.Now, kinds: map[string]*serverErrorKind{}}
}

func (e *serverErrors) Write(p []byte) (int, error) {
	defer e.lines.Add(1)
	line := strings.TrimSpace(string(p))
	kind := serverErrorKindOf(line)
	now := e.now()
	e.mu.Lock()
	k := e.kinds[kind]
	if k == nil {
		if len(e.kinds) >= maxServerErrorKinds {
			kind = "other"
			k = e.kinds[kind]
		}
		if k == nil {
			k = &serverErrorKind{}
			e.kinds[kind] = k
		}
	}
	if !k.logged.IsZero() && now.Sub(k.logged) < serverErrorEvery {
		k.held++
		e.mu.Unlock()
		return len(p), nil
	}
	held, last := k.held, k.logged
	k.logged, k.held = now, 0
	e.mu.Unlock()
	if held > 0 {
		e.log.Warn(line, "like_it_not_logged", held, "since", now.Sub(last).Round(time.Second))
	} else {
		e.log.Warn(line)
	}
	return len(p), nil
}

// serverErrorKindOf is what lines of one kind share: the line without the peer's address and
// with its digits left out — "TLS handshake error: EOF" of "http: TLS handshake error from
// 10.0.0.7:51234: EOF", another kind than "…: remote error: tls: bad certificate" (a rotation gone
// wrong is not held back behind a probe's EOF).
func serverErrorKindOf(line string) string {
	rest := strings.TrimPrefix(line, "http: ")
	if strings.HasPrefix(rest, "panic serving ") {
		return "panic serving" // then the peer's address and a stack: one kind whoever the peer
	}
	if i := strings.Index(rest, " from "); i >= 0 {
		after := rest[i+len(" from "):]
		if j := strings.Index(after, ": "); j >= 0 {
			rest = rest[:i] + after[j:]
		} else {
			rest = rest[:i]
		}
	}
	if len(rest) > 200 {
		rest = rest[:200]
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, rest)
}
