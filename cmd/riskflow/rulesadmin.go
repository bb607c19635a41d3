package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
)

// rulesAdmin implements api.RulesAdmin: PUT /v1/rules compiles a pack against this node's
// declared variables, writes it to the configured pack file (so restarts and other nodes watching
// the file pick it up), swaps it in and records it in ClickHouse's rule_versions.
type rulesAdmin struct {
	scorer *scoring.Scorer
	path   string        // scoring.rules; "" = the pack lives only in this process
	ch     chsink.Config // zero Addr = no recording
	log    *slog.Logger

	mu       sync.Mutex
	store    *chsink.Store
	migrated bool
	loadedBy string
	loadedAt time.Time
}

func newRulesAdmin(a *app) *rulesAdmin {
	c := a.cfg.ClickHouse
	return &rulesAdmin{
		scorer: a.scorer, path: a.cfg.Scoring.Rules, log: a.log,
		ch:       chsink.Config{Addr: c.Addr, Database: c.Database, Username: c.Username, Password: c.Password},
		loadedBy: "startup", loadedAt: time.Now().UTC(),
	}
}

func (r *rulesAdmin) Current() api.RulesInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.scorer.Rules().Load()
	info := api.RulesInfo{LoadedBy: r.loadedBy, LoadedAt: r.loadedAt.Format(time.RFC3339), Persisted: r.path != ""}
	if p != nil {
		info.Pack, info.Version, info.Rules = p.Name, p.Version, len(p.Rules)
	}
	return info
}

func (r *rulesAdmin) Update(ctx context.Context, pack []byte, who string) (api.RulesInfo, error) {
	p, err := rules.Compile(pack, r.scorer.Env())
	if err != nil {
		return api.RulesInfo{}, fmt.Errorf("%w:\n%v", api.ErrRejected, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	info := api.RulesInfo{Pack: p.Name, Version: p.Version, Rules: len(p.Rules), LoadedBy: "api:" + who}
	if r.path != "" {
		if err := writeAtomic(r.path, pack); err != nil {
			return api.RulesInfo{}, fmt.Errorf("persist the pack to %s: %w", r.path, err)
		}
		info.Persisted = true
	}
	r.scorer.SetPack(p)
	r.loadedBy, r.loadedAt = info.LoadedBy, time.Now().UTC()
	info.LoadedAt = r.loadedAt.Format(time.RFC3339)
	info.Recorded = r.record(ctx, p, pack, info.LoadedBy)
	return info, nil
}

// record writes the version to rule_versions; false when ClickHouse is off or failing (the pack is
// live regardless: scoring never waits for the history store).
func (r *rulesAdmin) record(ctx context.Context, p *rules.Pack, content []byte, who string) bool {
	if r.ch.Addr == "" {
		return false
	}
	if r.store == nil {
		s, err := chsink.Open(ctx, r.ch)
		if err != nil {
			r.log.Warn("rule version not recorded", "err", err)
			return false
		}
		r.store = s
	}
	if !r.migrated {
		if _, err := r.store.Migrate(ctx); err != nil {
			r.log.Warn("rule version not recorded", "err", err)
			return false
		}
		r.migrated = true
	}
	host, _ := os.Hostname()
	err := r.store.RecordRuleVersion(ctx, chsink.RuleVersion{
		Version: p.Version, Name: p.Name, LoadedBy: who + "@" + host, Source: "api",
		LoadedAt: time.Now().UTC(), RuleCount: len(p.Rules), Content: string(content),
	})
	if err != nil {
		r.log.Warn("rule version not recorded", "version", p.Version, "err", err)
		return false
	}
	return true
}

// writeAtomic replaces path with data so a watcher never reads half a file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rules-*.yaml")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
