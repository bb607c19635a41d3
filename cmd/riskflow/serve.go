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
	if err != nil && !cf.flagGiven("roles") && os.Getenv("RISKFLOW_ROLES") != "" {
		// From the environment, where the command line shows nothing of it: name the variable.
		return configf("env RISKFLOW_ROLES: %v", strings.TrimPrefix(err.Error(), "--roles: "))
	}
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
		return withEmptyFiles(err, cf.origins)
	}
	log := newLogger(cfg.Log, stderr)
	if why := weakHashKey(cfg.Scoring.PhoneHashKey); why != "" {
		log.Warn("scoring.phone_hash_key " + why)
	}
	a, err := newAppFor(cfg, log, p)
	if err != nil {
		return err
	}
	g, _, err := a.start(ctx, p, startOptions{listen: cfg.API.Listen})
	if err != nil {
		if ctx.Err() != nil {
			log.Info("riskflow stopped") // while starting (waiting for the broker): said as a running node says it
			return nil
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

// minHashKeyBytes is the shortest phone-hash key serve takes without a warning.
const minHashKeyBytes = 16

// weakHashKey says what is wrong with a phone-hash key a deployment should not run with, or "".
// The key is what keeps stored phone hashes from being reversed: whoever reads one hash of a number
// they know (an analyst's own, in ClickHouse) can search every short key offline, and with the key
// hash every number of a segment (10,000 each). Set but weak is only warned about: refusing it
// would make a rollout of this check an outage.
func weakHashKey(key string) string {
	switch {
	case key == "":
		return ""
	case key == devHashKey:
		return "is the dev key riskflow dev and demo use, printed in this binary: anyone can reverse the stored phone hashes; set a random key of 32 bytes"
	case strings.TrimSpace(key) != key:
		// YAML's "phone_hash_key: |" keeps a trailing newline; the environment, a _FILE and --set
		// trim it: nodes given the same key the two ways stored different hashes of every number,
		// and a lookup found none of the other's.
		return "begins or ends with a space or a newline (a YAML block scalar \"|\" keeps one), which a node given the key from the environment, a _FILE or --set has not: the two hash every number differently; write the key on the key's line"
	case len(key) < minHashKeyBytes:
		return fmt.Sprintf("is %d bytes: a key that short can be found from one known number's stored hash, and then every hash reversed; set a random key of 32 bytes", len(key))
	}
	return ""
}
