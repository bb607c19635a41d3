package main

import (
	"context"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/rules"
)

// buildInfo describes this binary: module version, VCS revision (when built from a checkout, else
// as stamped by -ldflags: stampedVersion, stampedRevision) and the Go version.
func buildInfo() (version, revision, goVersion string) {
	bi, ok := debug.ReadBuildInfo()
	return buildInfoOf(bi, ok, stampedVersion, stampedRevision)
}

func buildInfoOf(bi *debug.BuildInfo, ok bool, stampVersion, stampRevision string) (version, revision, goVersion string) {
	version, revision, goVersion = "(devel)", "unknown", "unknown"
	if stampVersion != "" {
		version = stampVersion
	}
	if stampRevision != "" {
		revision = stampRevision
	}
	if !ok {
		return
	}
	goVersion = bi.GoVersion
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			revision = s.Value[:12]
		}
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	return
}

// infoCollector reports riskflow_build_info and riskflow_rules_info (the running rule pack, read at
// scrape time so a hot reload shows at once).
type infoCollector struct {
	pack                *rules.Holder
	build, rules        *prometheus.Desc
	version, rev, gover string
}

func newInfoCollector(pack *rules.Holder) *infoCollector {
	v, r, g := buildInfo()
	return &infoCollector{pack: pack, version: v, rev: r, gover: g,
		build: prometheus.NewDesc("riskflow_build_info", "This binary: version, VCS revision and Go version (value 1).", []string{"version", "revision", "go_version"}, nil),
		rules: prometheus.NewDesc("riskflow_rules_info", "The rule pack this process runs: name and version (value 1).", []string{"pack", "version"}, nil),
	}
}

func (c *infoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.build; ch <- c.rules }

func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, 1, c.version, c.rev, c.gover)
	if p := c.pack.Load(); p != nil {
		ch <- prometheus.MustNewConstMetric(c.rules, prometheus.GaugeValue, 1, p.Name, p.Version)
	}
}

// watchGroupLag keeps riskflow_consumer_lag_messages{group,partition} current, reading the group's
// committed offsets and the topic's end offsets from the broker every 10 s until ctx is done.
func (a *app) watchGroupLag(ctx context.Context, kc consumers.Config, group, topic string) {
	var failed int
	read := func() { failed = a.readGroupLag(ctx, kc, group, topic, failed) }
	read()
	every(ctx, 10*time.Second, read)
}

// readGroupLag sets the group's lag series once; failed counts the reads that failed in a row
// before this one, and it returns the new count. A lag it cannot read is left out, not left at its
// last reading: during a broker outage a standing 0 let the scorers' autoscaler scale down (and a
// standing high value scale up) on a number nobody measured, while a missing metric holds it where
// it is. The second failure in a row is logged (the first read often fails on topics just
// created), and so is the recovery, so that a lag that never appears (the group not readable) is
// not a silent gap.
func (a *app) readGroupLag(ctx context.Context, kc consumers.Config, group, topic string, failed int) int {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lag, err := consumers.GroupLag(rctx, kc, group, topic)
	if err != nil {
		if ctx.Err() != nil {
			return failed
		}
		a.obs.lag.DeletePartialMatch(prometheus.Labels{"group": group})
		if failed == 1 {
			a.log.Warn("could not read the consumer group's lag; riskflow_consumer_lag_messages leaves it out until it can", "group", group, "topic", topic, "err", err)
		}
		return failed + 1
	}
	if failed > 1 {
		a.log.Info("the consumer group's lag is readable again", "group", group, "topic", topic)
	}
	for p, n := range lag {
		a.obs.lag.WithLabelValues(group, strconv.Itoa(p)).Set(float64(n))
	}
	return 0
}

// registerInfo registers an info metric: one series, of value 1, whose labels (opts.ConstLabels)
// say what this process runs with, compared across nodes by the *Differ alerts. Its Name stays
// written at the call, where deploy/prometheus finds the metrics riskflow declares.
func registerInfo(reg prometheus.Registerer, opts prometheus.GaugeOpts) {
	reg.MustRegister(prometheus.NewGaugeFunc(opts, func() float64 { return 1 }))
}
