package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
		return fmt.Errorf("ops: listen on %s (ops.listen): %w%s", listen, err, addrInUseHint(err, "ops.listen"))
	}
	hs := &http.Server{Handler: a.opsHandler(), ReadHeaderTimeout: 2 * time.Second, WriteTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
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

func (a *app) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		opsJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		err := a.health.ready(r.URL.Query()["exclude"]...)
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
	return mux
}

func opsJSON(w http.ResponseWriter, code int, body schemas.ErrorBody) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
