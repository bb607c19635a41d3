package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// apiServer is the API's HTTP server, listening from the start of the process: until the API
// takes it over (use), it answers /healthz, /readyz and /metrics as the ops port does, and every
// other route 503 naming what the process waits for. A process with the api role that waits for
// the broker is thus alive and observable, and a verify service's check fails at once instead of
// being refused a connection — or hanging.
type apiServer struct {
	hs      *http.Server
	addr    string
	handler atomic.Pointer[http.Handler]
	errc    chan error // Serve's end
}

// listenAPI listens on the API's address, with TLS when api.tls_cert is set.
func (a *app) listenAPI(listen string) (net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s (api.listen): %w%s", listen, err, addrInUseHint(err, "--listen or api.listen"))
	}
	if a.cfg.API.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.API.TLSCert, a.cfg.API.TLSKey)
		if err != nil {
			ln.Close()
			return nil, configError{fmt.Errorf("api.tls_cert: %w", err)}
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return ln, nil
}

// addrInUseHint tells what to do when another process holds the port: which setting moves it.
func addrInUseHint(err error, setting string) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	return fmt.Sprintf(" (another process holds that port — a second riskflow? Give another address with %s; port 0 picks a free one)", setting)
}

// serveStarting serves ln with the starting handler until use.
func (a *app) serveStarting(ln net.Listener) *apiServer {
	s := &apiServer{addr: ln.Addr().String(), errc: make(chan error, 1)}
	var starting http.Handler = a.startingHandler()
	s.handler.Store(&starting)
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.handler.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.log.Info("api address listening while the process starts", "addr", s.addr, "tls", a.cfg.API.TLSCert != "")
	go func() { s.errc <- s.hs.Serve(ln) }()
	return s
}

// use hands the server to the API: requests from now on, on new connections and kept-alive
// ones, go to h.
func (s *apiServer) use(h http.Handler) { s.handler.Store(&h) }

// close stops a server the API never took over (the process failed to start).
func (s *apiServer) close() {
	_ = s.hs.Close()
	<-s.errc
}

// startingHandler is what the API's address answers while the process starts.
func (a *app) startingHandler() http.Handler {
	ops := a.opsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
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
