package prometheus

import (
	"slices"
	"testing"
	"time"
)

// The alerts evaluated by Prometheus's own engine (Eval) over scraped series of situations the
// descriptions name: an alert must fire in the situation it describes and stay quiet in normal
// operation (the `for:` durations are shorter than the stretch the situation lasts).
func TestAlertsFireWhenTheyShould(t *testing.T) {
	for _, c := range []struct {
		alert, situation string
		series           []Series
		fires            bool
	}{
		{"RiskflowArchiverIdle", "scorers score, the archiver archives", []Series{
			Counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
			Counter(`riskflow_archived_total{job="riskflow-archiver",instance="a1"}`, 50),
		}, false},
		{"RiskflowArchiverIdle", "scorers score, the archiver is up and stores nothing (stalled)", []Series{
			Counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
			Counter(`riskflow_archived_total{job="riskflow-archiver",instance="a1"}`, 0),
		}, true},
		{"RiskflowArchiverIdle", "scorers score, no archiver is running or scraped", []Series{
			Counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
		}, true},
		{"RiskflowLoopStalled", "the archiver stalled by a ClickHouse outage: history lags, no page", []Series{
			Gauge(`riskflow_loop_stalled_seconds{job="riskflow-archiver",instance="a1",loop="archiver"}`, 300),
			Gauge(`riskflow_loop_stalled_seconds{job="riskflow-scorer",instance="s1",loop="scorer"}`, 0),
		}, false},
		{"RiskflowHistoryLoopStalled", "the archiver stalled by a ClickHouse outage", []Series{
			Gauge(`riskflow_loop_stalled_seconds{job="riskflow-archiver",instance="a1",loop="archiver"}`, 300),
		}, true},
		{"RiskflowHistoryLoopStalled", "the scorer stalled: the page's, not this ticket's", []Series{
			Gauge(`riskflow_loop_stalled_seconds{job="riskflow-scorer",instance="s1",loop="scorer"}`, 300),
		}, false},
		{"RiskflowAPIErrors", "checks answered, probes ready", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 500),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="200"}`, 0.1),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="healthz",code="200"}`, 0.1),
		}, false},
		{"RiskflowAPIErrors", "5% of checks answered 503", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 475),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="503"}`, 25),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="200"}`, 0.1),
		}, true},
		{"RiskflowAPIErrors", "a node replays its state at start, out of rotation: only the probes reach it, /readyz says 503", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="503"}`, 0.1),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="healthz",code="200"}`, 0.1),
		}, false},
		{"RiskflowAPIErrors", "a node in rotation, a few checks, and /readyz 503 to a probe of a stale state", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 2),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="503"}`, 0.1),
		}, false},
		{"RiskflowMemoryNearLimit", "a scorer's heap at 90% of GOMEMLIMIT", []Series{
			Gauge(`riskflow_build_info{job="riskflow-scorer",instance="s1",version="v1",revision="r",go_version="go"}`, 1),
			Gauge(`go_memstats_heap_inuse_bytes{job="riskflow-scorer",instance="s1"}`, 0.9*1843*(1<<20)),
			Gauge(`go_gc_gomemlimit_bytes{job="riskflow-scorer",instance="s1"}`, 1843<<20),
		}, true},
		{"RiskflowMemoryNearLimit", "a scorer's heap at half of GOMEMLIMIT", []Series{
			Gauge(`riskflow_build_info{job="riskflow-scorer",instance="s1",version="v1",revision="r",go_version="go"}`, 1),
			Gauge(`go_memstats_heap_inuse_bytes{job="riskflow-scorer",instance="s1"}`, 0.5*1843*(1<<20)),
			Gauge(`go_gc_gomemlimit_bytes{job="riskflow-scorer",instance="s1"}`, 1843<<20),
		}, false},
		{"RiskflowMemoryNearLimit", "no GOMEMLIMIT (exported as 2^63-1), a heap of 20 GiB", []Series{
			Gauge(`riskflow_build_info{job="riskflow-scorer",instance="s1",version="v1",revision="r",go_version="go"}`, 1),
			Gauge(`go_memstats_heap_inuse_bytes{job="riskflow-scorer",instance="s1"}`, 20<<30),
			Gauge(`go_gc_gomemlimit_bytes{job="riskflow-scorer",instance="s1"}`, 9.223372036854776e+18),
		}, false},
		{"RiskflowMemoryNearLimit", "another Go program near its limit, scraped by the same Prometheus", []Series{
			Gauge(`go_memstats_heap_inuse_bytes{job="other",instance="o1"}`, 0.95*1843*(1<<20)),
			Gauge(`go_gc_gomemlimit_bytes{job="other",instance="o1"}`, 1843<<20),
		}, false},
	} {
		t.Run(c.alert+"/"+c.situation, func(t *testing.T) {
			expr := alertExpr(t, c.alert)
			got, err := Eval(expr, c.series)
			if err != nil {
				t.Fatal(err)
			}
			if fires := len(got) > 0; fires != c.fires {
				t.Errorf("%s fires = %v (%v), want %v\nexpr: %s", c.alert, fires, got, c.fires, expr)
			}
		})
	}
}

func alertExpr(t *testing.T, name string) string {
	t.Helper()
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r.Expr
			}
		}
	}
	t.Fatalf("no alert %s", name)
	return ""
}

// normalOperation is what an api, a scorer and an archiver export on the shared Kafka and
// ClickHouse in normal operation (a steady stream, everything caught up, snapshots every 5
// minutes), each under its own job.
func normalOperation() []Series {
	var ss []Series
	api := `{job="riskflow-api",instance="api-1"`
	ss = append(ss,
		Counter(`riskflow_api_requests_total`+api+`,route="check",code="200"}`, 300),
		Counter(`riskflow_api_requests_total`+api+`,route="check",code="401"}`, 0.5),
		Counter(`riskflow_api_requests_total`+api+`,route="readyz",code="200"}`, 0.1),
		Counter(`riskflow_api_request_seconds_bucket`+api+`,route="check",le="0.001"}`, 290),
		Counter(`riskflow_api_request_seconds_bucket`+api+`,route="check",le="0.01"}`, 299.5),
		Counter(`riskflow_api_request_seconds_bucket`+api+`,route="check",le="0.025"}`, 300),
		Counter(`riskflow_api_request_seconds_bucket`+api+`,route="check",le="+Inf"}`, 300),
		Counter(`riskflow_api_scores_total`+api+`,score="0"}`, 298),
		Counter(`riskflow_api_scores_total`+api+`,score="900"}`, 2),
		Counter(`riskflow_decisions_total`+api+`,result="dropped"}`, 0),
		Counter(`riskflow_decisions_total`+api+`,result="published"}`, 300),
		Gauge(`riskflow_replica_lag_messages`+api+`}`, 3),
		Gauge(`riskflow_replica_staleness_seconds`+api+`}`, 0.9),
		Gauge(`riskflow_snapshot_age_seconds`+api+`}`, 200))
	sc := `{job="riskflow-scorer",instance="scorer-1"`
	ss = append(ss,
		Counter(`riskflow_scored_total`+sc+`,score="0"}`, 180),
		Counter(`riskflow_scored_total`+sc+`,score="900"}`, 2),
		Counter(`riskflow_dead_lettered_total`+sc+`,reason="decode"}`, 0.01),
		Gauge(`riskflow_loop_stalled_seconds`+sc+`,loop="scorer"}`, 0),
		Gauge(`riskflow_replica_lag_messages`+sc+`}`, 0),
		Gauge(`riskflow_replica_staleness_seconds`+sc+`}`, 0.03),
		Gauge(`riskflow_snapshot_age_seconds`+sc+`}`, 100),
		Gauge(`riskflow_scorer_group_info`+sc+`,group="riskflow-scorer",topic="verify.events"}`, 1))
	for p := range 4 {
		ss = append(ss, Gauge(`riskflow_consumer_lag_messages`+sc+`,group="riskflow-scorer",partition="`+string(rune('0'+p))+`"}`, 20))
	}
	// Every node runs the pack file's version; no rule fails.
	for _, node := range []string{api, sc} {
		ss = append(ss,
			Gauge(`riskflow_rules_info`+node+`,pack="default",version="a553987f111021fa"}`, 1),
			Gauge(`riskflow_phone_hash_key_info`+node+`,fingerprint="4967d75a4e29916e"}`, 1),
			Gauge(`riskflow_address_data_info`+node+`,fingerprint="keying 6 devices 1 8e4ea831b08beffe"}`, 1),
			Gauge(`riskflow_rules_file_ok`+node+`}`, 1),
			Counter(`riskflow_rule_errors_total`+node+`,rule="phones_per_ip_crowd"}`, 0))
	}
	ar := `{job="riskflow-archiver",instance="archiver-1"`
	for _, node := range []string{api, sc, ar} {
		ss = append(ss, Gauge(`riskflow_build_info`+node+`,version="v0.10.0",revision="abc",go_version="go1.26.8"}`, 1))
	}
	// The scorer and the api hold the whole state: 1.1 GiB of heap under deploy/kubernetes's
	// GOMEMLIMIT of 1843 MiB; the archiver, 60 MiB, runs without one.
	for _, node := range []string{api, sc} {
		ss = append(ss, Gauge(`go_memstats_heap_inuse_bytes`+node+`}`, 1.1*(1<<30)), Gauge(`go_gc_gomemlimit_bytes`+node+`}`, 1843<<20))
	}
	ss = append(ss, Gauge(`go_memstats_heap_inuse_bytes`+ar+`}`, 60<<20), Gauge(`go_gc_gomemlimit_bytes`+ar+`}`, 9.223372036854776e+18))
	ss = append(ss,
		Counter(`riskflow_archived_total`+ar+`}`, 182),
		Gauge(`riskflow_archive_database_info`+ar+`,group="riskflow-archiver",topic="risk.scores",database="riskflow"}`, 1),
		Gauge(`riskflow_archive_database_info`+ar+`,group="riskflow-decisions",topic="risk.decisions",database="riskflow"}`, 1),
		Gauge(`riskflow_breaker_state`+ar+`,breaker="archiver",state="closed"}`, 1),
		Gauge(`riskflow_breaker_state`+ar+`,breaker="archiver",state="open"}`, 0),
		Gauge(`riskflow_loop_stalled_seconds`+ar+`,loop="archiver"}`, 0),
		Gauge(`riskflow_loop_stalled_seconds`+ar+`,loop="decisions"}`, 0))
	return ss
}

// Normal operation, as an api, a scorer and an archiver exported it on the shared Kafka and
// ClickHouse (a steady stream, everything caught up, snapshots every 5 minutes): no alert fires.
// Then each alert's own situation, on top of it, fires that alert.
func TestAlertsQuietInNormalOperation(t *testing.T) {
	normal := normalOperation
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			v, err := Eval(r.Expr, normal())
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			if len(v) > 0 {
				t.Errorf("%s fires in normal operation: %v", r.Alert, v)
			}
		}
	}
	situations := map[string][]Series{
		"RiskflowLoopStalled":        {Gauge(`riskflow_loop_stalled_seconds{job="riskflow-scorer",instance="scorer-1",loop="scorer"}`, 300)},
		"RiskflowHistoryLoopStalled": {Gauge(`riskflow_loop_stalled_seconds{job="riskflow-archiver",instance="archiver-1",loop="archiver"}`, 300)},
		"RiskflowBreakerOpen":        {Gauge(`riskflow_breaker_state{job="riskflow-archiver",instance="archiver-1",breaker="archiver",state="open"}`, 1)},
		"RiskflowReplicaStale":       {Gauge(`riskflow_replica_staleness_seconds{job="riskflow-api",instance="api-2"}`, 400)},
		"RiskflowNodeNotStarted":     waitingForKafka(`{job="riskflow-scorer",instance="scorer-2"`),
		"RiskflowReplicaNotCaughtUp": {Gauge(`riskflow_replica_staleness_seconds{job="riskflow-api",instance="api-2"}`, -1)},
		"RiskflowSnapshotOld":        {Gauge(`riskflow_snapshot_age_seconds{job="riskflow-scorer",instance="scorer-2"}`, 4000)},
		"RiskflowDecisionsDropped":   {Counter(`riskflow_decisions_total{job="riskflow-api",instance="api-2",result="dropped"}`, 1)},
		"RiskflowDeadLetters":        {Counter(`riskflow_dead_lettered_total{job="riskflow-scorer",instance="scorer-2",reason="invalid"}`, 10)},
		// Growing by 10 messages a second: 24,000 behind after 40 minutes.
		"RiskflowConsumerLagGrowing":     {Counter(`riskflow_consumer_lag_messages{job="riskflow-scorer",instance="scorer-2",group="riskflow-scorer",partition="0"}`, 10)},
		"RiskflowReplicaLagGrowing":      {Counter(`riskflow_replica_lag_messages{job="riskflow-api",instance="api-2"}`, 10)},
		"RiskflowRulePackFileNotLoaded":  {Gauge(`riskflow_rules_file_ok{job="riskflow-api",instance="api-2"}`, 0)},
		"RiskflowRulePackVersionsDiffer": {Gauge(`riskflow_rules_info{job="riskflow-api",instance="api-2",pack="default",version="173c4118e127ea44"}`, 1)},
		"RiskflowArchiveDatabasesDiffer": {Gauge(`riskflow_archive_database_info{job="riskflow-archiver",instance="archiver-2",group="riskflow-archiver",topic="risk.scores",database="riskflow_staging"}`, 1)},
		"RiskflowAddressDataDiffers":     {Gauge(`riskflow_address_data_info{job="riskflow-scorer",instance="scorer-2",fingerprint="keying 6 devices 1 0c3d9e41a7f2b650"}`, 1)},
		"RiskflowScorerGroupsDiffer":     {Gauge(`riskflow_scorer_group_info{job="riskflow-scorer",instance="scorer-2",group="riskflow-scorer2",topic="verify.events"}`, 1)},
		"RiskflowPhoneHashKeysDiffer":    {Gauge(`riskflow_phone_hash_key_info{job="riskflow-scorer",instance="scorer-2",fingerprint="b1a0e5f2d77c9a13"}`, 1)},
		"RiskflowRuleFailing":            {Counter(`riskflow_rule_errors_total{job="riskflow-scorer",instance="scorer-2",rule="ratio_rule"}`, 2)},
		"RiskflowMemoryNearLimit": {
			Gauge(`riskflow_build_info{job="riskflow-scorer",instance="scorer-2",version="v0.10.0",revision="abc",go_version="go1.26.8"}`, 1),
			Gauge(`go_memstats_heap_inuse_bytes{job="riskflow-scorer",instance="scorer-2"}`, 1.7*(1<<30)),
			Gauge(`go_gc_gomemlimit_bytes{job="riskflow-scorer",instance="scorer-2"}`, 1843<<20),
		},
		"RiskflowCheckLatencyHigh": {
			Counter(`riskflow_api_request_seconds_bucket{job="riskflow-api",instance="api-2",route="check",le="0.025"}`, 90),
			Counter(`riskflow_api_request_seconds_bucket{job="riskflow-api",instance="api-2",route="check",le="0.05"}`, 100),
			Counter(`riskflow_api_request_seconds_bucket{job="riskflow-api",instance="api-2",route="check",le="+Inf"}`, 100),
		},
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			// These have their situations in TestAlertsFireWhenTheyShould, and the absent ones —
			// series gone, not added — in TestAlertsSeeARoleGone.
			if _, ok := situations[r.Alert]; !ok && !slices.Contains([]string{"RiskflowAPIErrors", "RiskflowArchiverIdle", "RiskflowScorersAbsent", "RiskflowAPIAbsent"}, r.Alert) {
				t.Errorf("%s: no situation it fires in", r.Alert)
			}
		}
	}
	for alert, situation := range situations {
		v, err := Eval(alertExpr(t, alert), append(normal(), situation...))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) == 0 {
			t.Errorf("%s does not fire in its situation", alert)
		}
		// And through its whole `for:`, as the rule manager requires.
		r := alertRule(t, alert)
		forDur, _ := time.ParseDuration(r.For)
		if fires, err := Fires(r.Expr, forDur, append(normal(), situation...)); err != nil || !fires {
			t.Errorf("%s does not hold through its for: %s in its situation (%v)", alert, r.For, err)
		}
	}
}

// Every process of a role gone — crash-looping, OOM-killed, scaled to 0, or no longer scraped —
// is seen by some alert: its series disappear with it, and an alert that only reads them (a
// rate, a stall) has nothing left to fire on. Measured on real processes (an api, a scorer, an
// archiver on one broker and ClickHouse, kill -9 of every scorer): the api and the archiver
// exported no series of the scorers' — no riskflow_scored_total, the scorer group's
// riskflow_consumer_lag_messages read by the scorers only — and RiskflowArchiverIdle needs scored
// events, so nothing fired while no event was scored.
func TestAlertsSeeARoleGone(t *testing.T) {
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{"riskflow-api", "riskflow-scorer", "riskflow-archiver"} {
		t.Run(job, func(t *testing.T) {
			var left []Series
			for _, s := range normalOperation() {
				if s.lset.Get("job") != job {
					left = append(left, s)
				}
			}
			var firing []string
			for _, g := range f.Groups {
				for _, r := range g.Rules {
					forDur, _ := time.ParseDuration(r.For)
					fires, err := Fires(r.Expr, forDur, left)
					if err != nil {
						t.Fatalf("%s: %v", r.Alert, err)
					}
					if fires {
						firing = append(firing, r.Alert)
					}
				}
			}
			if len(firing) == 0 {
				t.Errorf("no alert fires with every %s process gone", job)
			}
			t.Logf("every %s process gone: %v", job, firing)
		})
	}
}

// Alerts judged as Prometheus's rule manager judges them, over their whole `for:` (Fires): a
// condition that comes and goes between evaluations never fires, so an alert's expression must
// hold through the situation it names, not only at some moments of it.
func TestAlertsHoldThroughTheirFor(t *testing.T) {
	archiver := `{job="riskflow-archiver",instance="archiver-1"`
	// The breaker through a ClickHouse that does not answer (host down, packets dropped): open
	// for breaker_open_for (5 s), then half-open while its one trial write waits
	// clickhouse.dial_timeout or write_timeout (5 s, 30 s) and fails, then open again. Measured on
	// an archiver against a listener that never answers, sampled each second: open 4–6 s,
	// half-open 4–5 s, over and over. Evaluations 15 s apart see one state, then the other.
	flapping := func(n int, open bool) float64 {
		if (n%2 == 0) == open {
			return 1
		}
		return 0
	}
	breaker := func(closed, open, halfOpen func(n int) float64) []Series {
		return []Series{
			Stepped(`riskflow_breaker_state`+archiver+`,breaker="archiver",state="closed"}`, closed),
			Stepped(`riskflow_breaker_state`+archiver+`,breaker="archiver",state="open"}`, open),
			Stepped(`riskflow_breaker_state`+archiver+`,breaker="archiver",state="half-open"}`, halfOpen),
		}
	}
	zero := func(int) float64 { return 0 }
	one := func(int) float64 { return 1 }
	for _, c := range []struct {
		alert, situation string
		series           []Series
		fires            bool
	}{
		{"RiskflowBreakerOpen", "ClickHouse refuses connections: the trial write fails at once, the breaker stays open",
			breaker(zero, one, zero), true},
		{"RiskflowBreakerOpen", "ClickHouse does not answer: open and half-open by turns, never closed",
			breaker(zero, func(n int) float64 { return flapping(n, true) }, func(n int) float64 { return flapping(n, false) }), true},
		{"RiskflowBreakerOpen", "ClickHouse answers: closed", breaker(one, zero, zero), false},
		{"RiskflowBreakerOpen", "one trial write succeeds after a short outage: closed again",
			breaker(func(n int) float64 { return b2f(n > 3) }, func(n int) float64 { return b2f(n <= 3 && n%2 == 0) }, func(n int) float64 { return b2f(n <= 3 && n%2 == 1) }), false},
	} {
		t.Run(c.alert+"/"+c.situation, func(t *testing.T) {
			r := alertRule(t, c.alert)
			forDur, err := time.ParseDuration(r.For)
			if err != nil && r.For != "" {
				t.Fatal(err)
			}
			got, err := Fires(r.Expr, forDur, c.series)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.fires {
				t.Errorf("%s fires = %v, want %v\nexpr: %s (for %s)", c.alert, got, c.fires, r.Expr, r.For)
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func alertRule(t *testing.T, name string) Rule {
	t.Helper()
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r
			}
		}
	}
	t.Fatalf("no alert %s", name)
	return Rule{}
}

// waitingForKafka is what a process stuck at its start exports (node: `{job="…",instance="…"`):
// a scorer started on an unreachable broker, scraped after 20 s, had riskflow_build_info,
// riskflow_rules_info and riskflow_rule_errors_total (0 per rule) only — no replica, no loop.
func waitingForKafka(node string) []Series {
	return []Series{
		Gauge(`riskflow_build_info`+node+`,version="v0.10.0",revision="abc",go_version="go1.26.8"}`, 1),
		Gauge(`riskflow_rules_info`+node+`,pack="default",version="a553987f111021fa"}`, 1),
		Counter(`riskflow_rule_errors_total`+node+`,rule="phones_per_ip_crowd"}`, 0),
	}
}

// A node that never got past its start — the broker away or kafka.brokers wrong, /readyz
// "start: waiting for Kafka" — is seen by some alert, for that node, among nodes that work: it
// exports none of the series the alerts about replicas and loops watch.
func TestAlertsSeeANodeStuckAtItsStart(t *testing.T) {
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	running := func(node string) []Series {
		return append(waitingForKafka(node),
			Gauge(`riskflow_replica_staleness_seconds`+node+`}`, 0.5),
			Gauge(`riskflow_loop_stalled_seconds`+node+`,loop="scorer"}`, 0))
	}
	series := append(running(`{job="riskflow-scorer",instance="scorer-1"`), waitingForKafka(`{job="riskflow-scorer",instance="scorer-2"`)...)
	var firing []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			forDur, _ := time.ParseDuration(r.For)
			v, err := Eval(r.Expr, series)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			fires, err := Fires(r.Expr, forDur, series)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			for _, s := range v {
				if fires && s.Metric.Get("instance") == "scorer-2" {
					firing = append(firing, r.Alert)
				}
				if s.Metric.Get("instance") == "scorer-1" {
					t.Errorf("%s fires for the node that runs: %v", r.Alert, s)
				}
			}
		}
	}
	if len(firing) == 0 {
		t.Error("no alert fires for a node stuck at its start (waiting for Kafka)")
	}
}
