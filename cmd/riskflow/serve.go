package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// cmdServe runs the chosen roles against a real Kafka (and ClickHouse for the archiver).
func cmdServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cf commonFlags
	cf.register(fs)
	rolesFlag := fs.String("roles", envOr("RISKFLOW_ROLES", "scorer,archiver,api"), "comma-separated `roles` (env RISKFLOW_ROLES): "+roleDocs())
	listen := fs.String("listen", "", "API listen address (default api.listen)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	names, err := parseRoles(*rolesFlag)
	if err != nil {
		return err
	}
	if *listen != "" && !slices.Contains(names, "api") {
		return usagef("--listen is the api role's address, and --roles %s has no api: a process without it serves /metrics, /healthz and /readyz on ops.listen (--set ops.listen=%s)", *rolesFlag, *listen)
	}
	cfg, err := cf.load(func(c *Config) {
		if *listen != "" {
			c.API.Listen = *listen
		}
	})
	if err != nil {
		return err
	}
	p, err := resolveRoles(names, &cfg)
	if err != nil {
		return err
	}
	if err := p.check(&cfg); err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	g, _, err := a.start(ctx, p, startOptions{listen: cfg.API.Listen})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the broker
		}
		return err
	}
	err = g.Wait()
	if err == nil || errors.Is(err, context.Canceled) {
		log.Info("riskflow stopped")
		return nil
	}
	return err
}

// roleDocs lists the roles with what each does, for --roles' help.
func roleDocs() string {
	var b strings.Builder
	for _, r := range roleTable {
		fmt.Fprintf(&b, "\n%s: %s", r.name, r.doc)
	}
	return b.String()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
