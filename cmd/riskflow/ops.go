package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// runOps serves /metrics, /healthz and /readyz on listen until ctx is done: the operations port of
// a process without the api role (scorer, archiver), for probes and scrapes.
func (a *app) runOps(ctx context.Context, listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("ops: listen on %s (ops.listen): %w%s", listen, err, addrInUseHint(err, "ops.listen or RISKFLOW_OPS_LISTEN"))
	}
	hs := a.opsServer()
	a.log.Info("ops port listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ops: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// opsServer is the ops port's HTTP server, bounded as the API's, and answering as the API's does
// (OPTIONS * too: a 404 of its own, not net/http's empty 200).
func (a *app) opsServer() *http.Server {
	return &http.Server{Handler: a.opsHandler(), ReadHeaderTimeout: 2 * time.Second, WriteTimeout: 10 * time.Second,
		ReadTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second, ConnState: api.NewConnGuard(a.cfg.API.MaxConns, a.log).ConnState, // as the API's
		MaxHeaderBytes: 16 << 10, DisableGeneralOptionsHandler: true,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
}

// opsHandler answers the ops port's three routes, and everything else as the API answers it, in
// the API's error format ({"code":<status>,"content":"…"}, JSON): a known path with another
// method is a 405 with Allow, any other path — one not in its clean form too ("//readyz", which
// ServeMux would redirect) — a 404 naming the routes there are.
func (a *app) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := api.Query(r); err != nil { // it takes none, as the API's /healthz
			opsJSON(w, http.StatusBadRequest, schemas.ErrorBody{Code: http.StatusBadRequest, Content: err.Error()})
			return
		}
		opsJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		q, err := api.Query(r, "exclude") // a pair it cannot read is a 400, as on the API's /readyz
		if err != nil {
			opsJSON(w, http.StatusBadRequest, schemas.ErrorBody{Code: http.StatusBadRequest, Content: err.Error()})
			return
		}
		err = a.health.ready(q["exclude"]...)
		if errors.Is(err, api.ErrUnknownCheck) {
			opsJSON(w, http.StatusBadRequest, schemas.ErrorBody{Code: http.StatusBadRequest, Content: "exclude: " + err.Error()})
			return
		}
		if err != nil {
			opsJSON(w, http.StatusServiceUnavailable, schemas.ErrorBody{Code: http.StatusServiceUnavailable, Content: "not ready: " + err.Error()})
			return
		}
		opsJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ready"})
	})
	mux.HandleFunc("/", opsNoRoute)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A CONNECT to a host:port has no path: ServeMux would answer its text/plain 404.
		if p := r.URL.Path; r.Method == http.MethodConnect && p == "" || r.Method != http.MethodConnect && p != path.Clean("/"+p) {
			opsNoRoute(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// opsRoutes are the ops port's paths and their methods (for 405 answers).
var opsRoutes = map[string]string{"/metrics": "GET, HEAD", "/healthz": "GET, HEAD", "/readyz": "GET, HEAD"}

// opsNoRoute answers a request no route of the ops port took: 405 with Allow for one of its paths,
// else 404. Method and path are the caller's: shown short and escaped, phone numbers masked.
func opsNoRoute(w http.ResponseWriter, r *http.Request) {
	target := r.URL.EscapedPath()
	if target == "" {
		target = r.URL.Host // CONNECT host:port
	}
	method, p := schemas.ShowName(r.Method, 16), schemas.ShowName(target, 64)
	if allow, ok := opsRoutes[r.URL.EscapedPath()]; ok {
		w.Header().Set("Allow", allow)
		opsJSON(w, http.StatusMethodNotAllowed, schemas.ErrorBody{Code: http.StatusMethodNotAllowed,
			Content: fmt.Sprintf("method %s is not allowed on %s: use %s", method, p, allow)})
		return
	}
	opsJSON(w, http.StatusNotFound, schemas.ErrorBody{Code: http.StatusNotFound,
		Content: fmt.Sprintf("no route %s %s (this is the ops port, ops.listen: GET /healthz, /readyz, /metrics; the API's routes are on api.listen of an api node)", method, p)})
}

// opsJSON writes body as the API writes its answers: JSON, with its length.
func opsJSON(w http.ResponseWriter, code int, body schemas.ErrorBody) {
	b, _ := json.Marshal(body)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
