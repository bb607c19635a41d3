package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/pipeline"
)

var knownRoles = map[string]bool{"scorer": true, "archiver": true, "api": true}

func parseRoles(s string) (map[string]bool, error) {
	roles := map[string]bool{}
	for _, r := range splitList(s) {
		if !knownRoles[r] {
			return nil, usagef("--roles: %q is not scorer, archiver or api", r)
		}
		roles[r] = true
	}
	if len(roles) == 0 {
		return nil, usagef("--roles: at least one of scorer, archiver, api is required")
	}
	return roles, nil
}

// cmdServe runs the chosen roles against a real Kafka (and ClickHouse for the archiver).
func cmdServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cf commonFlags
	cf.register(fs)
	rolesFlag := fs.String("roles", envOr("RISKFLOW_ROLES", "scorer,archiver,api"), "comma-separated roles: scorer, archiver, api")
	listen := fs.String("listen", "", "API listen address (default api.listen)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	roles, err := parseRoles(*rolesFlag)
	if err != nil {
		return err
	}
	cfg, err := cf.load(func(c *Config) {
		if *listen != "" {
			c.API.Listen = *listen
		}
	})
	if err != nil {
		return err
	}
	var problems []string
	if cfg.Scoring.PhoneHashKey == "" && (roles["scorer"] || roles["api"]) {
		problems = append(problems, "scoring.phone_hash_key: required (RISKFLOW_SCORING_PHONE_HASH_KEY); it keys the stored phone hashes")
	}
	if roles["api"] && len(cfg.API.Keys) == 0 {
		problems = append(problems, "api.keys: no API keys configured (RISKFLOW_API_KEYS=app_key:secret,…); refusing to serve an open API")
	}
	if roles["api"] && cfg.API.Listen == "" {
		// net.Listen would pick a random port on every interface.
		problems = append(problems, "api.listen: required by the api role (RISKFLOW_API_LISTEN or --listen, e.g. 0.0.0.0:8080)")
	}
	if roles["archiver"] && cfg.ClickHouse.Addr == "" {
		problems = append(problems, "clickhouse.addr: required by the archiver role (RISKFLOW_CLICKHOUSE_ADDR)")
	}
	if len(problems) > 0 {
		return configf("invalid configuration:\n%s", strings.Join(problems, "\n"))
	}
	log := newLogger(cfg.Log, stderr)
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	if err := a.prepareKafka(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the broker
		}
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	var feed *pipeline.Feed
	if roles["scorer"] || roles["api"] {
		feed = a.startFeed(ctx, g) // the feature state, fed from every partition
		if !roles["archiver"] {
			a.watchRules(ctx, nil)
		}
	}
	if roles["scorer"] {
		g.Go(func() error { return a.runScorer(ctx, feed) })
	}
	if roles["archiver"] {
		g.Go(func() error { return a.runArchiver(ctx) })
	}
	if roles["api"] {
		g.Go(func() error { return a.runAPI(ctx, cfg.API.Listen, replicaServing(feed), a.health.ready, nil) })
	} else if cfg.Ops.Listen != "" {
		g.Go(func() error { return a.runOps(ctx, cfg.Ops.Listen) })
	}
	err = g.Wait()
	if err == nil || errors.Is(err, context.Canceled) {
		log.Info("riskflow stopped")
		return nil
	}
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
