package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/loadgen"
	"github.com/riskflow/riskflow/schemas"
)

// loadgenFlags are the generator's knobs, shared by loadgen and demo.
type loadgenFlags struct {
	rate       float64
	duration   time.Duration
	seed       uint64
	attack     float64
	scenarios  string
	apps       string
	start      string
	largeApp   string
	largeShare float64
}

// register declares the flags, with l's rate, duration and attack share as their defaults; what
// --duration means differs between commands (durationDoc).
func (l *loadgenFlags) register(fs interface {
	Float64Var(*float64, string, float64, string)
	Var(flag.Value, string, string)
	Uint64Var(*uint64, string, uint64, string)
	StringVar(*string, string, string, string)
}, durationDoc string) {
	fs.Float64Var(&l.rate, "rate", l.rate, "events per second (daily average; the daily rhythm modulates it)")
	// A span as --start, backtest --from and rules report --window take it: 1d as well as 24h.
	fs.Var((*spanFlag)(&l.duration), "duration", durationDoc+": a `span` like 90s, 10m or 1d")
	fs.Uint64Var(&l.seed, "seed", 0, "random seed: same seed, same stream (default: a new one each run)")
	fs.Float64Var(&l.attack, "attack-share", l.attack, "fraction of events from attack scenarios (0: none)")
	fs.StringVar(&l.scenarios, "scenarios", "", "comma-separated attack scenarios (default all: "+strings.Join(loadgen.Scenarios(), ", ")+")")
	fs.StringVar(&l.apps, "apps", "", "comma-separated app ids (default: the configured API keys, or loadgen's demo apps)")
	fs.StringVar(&l.start, "start", "", "event time of the first event: RFC 3339, a date (its UTC midnight), now, or a span before now like 24h or 7d, as backtest --from (default: the time that makes the stream end at about now; loadgen --out kafka or URL at --speedup 1: now)")
	fs.StringVar(&l.largeApp, "large-app", l.largeApp, "app id of a large regional app among the ordinary users (its numbers from 1,000 blocks, its users behind a twentieth of the NAT addresses, at least 200); empty: none")
	fs.Float64Var(&l.largeShare, "large-app-share", l.largeShare, "share of the ordinary users in --large-app")
}

// check names the first of the generator's flags that is out of range, before anything starts:
// loadgen.New's errors name its Config's fields, with the values demo derives from the flags
// (its --duration × --speedup). fs tells a flag given from its default.
func (l *loadgenFlags) check(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	switch {
	case !(l.rate > 0) || l.rate > loadgen.MaxRate:
		return usagef("--rate: %v is not a number of events per second above 0 and at most %d", l.rate, loadgen.MaxRate)
	case l.duration <= 0:
		return usagef("--duration: %v is not positive", l.duration)
	case !(l.attack >= 0 && l.attack < 1):
		return usagef("--attack-share: %v is not a fraction from 0 (no attack traffic) to below 1", l.attack)
	case unknownScenario(l.scenarios) != "":
		n := unknownScenario(l.scenarios)
		return usagef("--scenarios: unknown scenario %s%s (known: %s)", schemas.Excerpt(n, 40), didYouMean(n, loadgen.Scenarios(), ""), strings.Join(loadgen.Scenarios(), ", "))
	case given["large-app-share"] && l.largeApp == "":
		return usagef("--large-app-share: given without --large-app, the app it is a share of")
	case l.largeApp != "" && l.largeShare == 0 && !given["large-app-share"]:
		// loadgen's has no default: said as missing, not as a 0 the user never typed.
		return usagef("--large-app %s needs --large-app-share: the fraction of the ordinary users in it, between 0 and 1 (demo takes 0.5)", schemas.Excerpt(l.largeApp, 40))
	case l.largeApp != "" && !(l.largeShare > 0 && l.largeShare < 1):
		return usagef("--large-app-share: %v is not a fraction between 0 and 1 (exclusive) of the ordinary users in --large-app %s", l.largeShare, l.largeApp)
	}
	return nil
}

// unknownScenario is the first name of a --scenarios list that is no scenario of loadgen's, or "".
func unknownScenario(list string) string {
	for _, n := range splitList(list) {
		if !slices.Contains(loadgen.Scenarios(), n) {
			return n
		}
	}
	return ""
}

func (l *loadgenFlags) config(apps []string) (loadgen.Config, error) {
	if l.seed == 0 {
		l.seed = uint64(time.Now().UnixNano())
	}
	attack := l.attack
	if attack == 0 {
		attack = -1 // --attack-share 0: none (loadgen.Config's 0 is its default share)
	}
	c := loadgen.Config{Seed: l.seed, Rate: l.rate, Duration: l.duration, AttackShare: attack, Scenarios: splitList(l.scenarios), Apps: apps, Start: time.Now().UTC()}
	if l.largeApp != "" {
		c.LargeApp, c.LargeAppShare = l.largeApp, l.largeShare
	}
	if l.apps != "" {
		c.Apps = splitList(l.apps)
	}
	if l.start != "" {
		// The forms backtest --from and lookup --since take: "--start 2026-12-06" or "--start 7d"
		// was refused as "not an RFC 3339 time".
		t, err := parseWhen(l.start, time.Now())
		if err != nil {
			return c, usagef("--start: %v", err)
		}
		c.Start = t.UTC()
	}
	return c, nil
}

// cmdLoadgen writes labelled synthetic traffic to a JSONL file, Kafka or POST /v1/events.
func cmdLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("loadgen", stderr)
	var cf commonFlags
	cf.register(fs)
	lf := loadgenFlags{rate: 200, duration: time.Minute, attack: loadgen.DefaultAttackShare}
	lf.register(fs, "span of event time to generate")
	out := fs.String("out", "-", "where events go: FILE.jsonl, - (stdout), kafka, or an http(s):// base URL of riskflow")
	labels := fs.String("labels", "", "write ground-truth labels ({event_id,app_id,label,attack} per line) to this file (- for stdout)")
	speedup := fs.Float64("speedup", 1, "pace kafka/http output to event time × this factor (0: as fast as possible)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	if err := lf.check(fs); err != nil {
		return err
	}
	if !(*speedup >= 0) || math.IsInf(*speedup, 1) {
		return usagef("--speedup: %v is not 0 (as fast as possible) or a positive factor", *speedup)
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	// Sorted: the apps' order sets their traffic weights, and --seed must reproduce the stream.
	lc, err := lf.config(slices.Sorted(maps.Keys(cfg.API.Keys)))
	if err != nil {
		return err
	}
	toFile := *out == "-" || strings.HasSuffix(*out, ".jsonl") || strings.HasSuffix(*out, ".json")
	toURL := strings.HasPrefix(*out, "http://") || strings.HasPrefix(*out, "https://")
	live := *out == "kafka" || toURL
	// What --out needs is checked before any file is created: a --labels file given again was
	// truncated, and then the run refused for a missing key.
	switch {
	case !toFile && !live:
		return usagef("--out: %s is not FILE.jsonl, -, kafka or an http(s):// URL", schemas.Excerpt(*out, 80))
	case *out == "kafka" && cfg.Scoring.PhoneHashKey == "":
		return withEmptyFiles(configf("scoring.phone_hash_key: required to key messages (RISKFLOW_SCORING_PHONE_HASH_KEY)"), cf.origins)
	case toURL && len(cfg.API.Keys) == 0:
		return withEmptyFiles(configf("api.keys: an app key is needed to POST /v1/events (RISKFLOW_API_KEYS=app:secret; the node riskflow dev starts takes RISKFLOW_API_KEYS=demo:demo-secret)"), cf.origins)
	case toURL:
		// An app key may only publish its own app_id: every app the stream holds needs its key.
		if app, flag := appWithoutKey(lc, cfg.API.Keys); app != "" {
			return usagef("%s: no key of app %s in api.keys: POST /v1/events takes an app's events with that app's key only (RISKFLOW_API_KEYS=app:secret,…)", flag, schemas.Excerpt(app, schemas.MaxAppIDLen))
		}
	}
	if lf.start == "" && !(live && *speedup == 1) {
		// Unless events are paced in real time, end the stream at now: riskflow refuses events
		// stamped more than a few minutes in the future.
		lc.Start = time.Now().UTC().Add(-lc.Duration)
	}
	g, err := loadgen.New(lc)
	if err != nil {
		return usageError{err}
	}
	var labelW io.Writer
	if *labels != "" && sameFile(*labels, *out) {
		// Events and labels interleaved in one file, a mix that neither produce nor backtest reads.
		return usagef("--labels: %s is where --out writes the events too; give the labels a file of their own", schemas.Excerpt(*labels, 80))
	}
	progress := stdout // what kafka and URL runs say as they go
	if *labels == "-" {
		labelW, progress = stdout, stderr // stdout: the labels alone
	} else if *labels != "" {
		f, err := os.Create(*labels)
		if err != nil {
			return usageError{fmt.Errorf("--labels: %w", err)}
		}
		defer f.Close()
		labelW = f
	}
	switch {
	case toFile:
		w := stdout
		if *out != "-" {
			f, err := os.Create(*out)
			if err != nil {
				return usageError{fmt.Errorf("--out: %w", err)}
			}
			defer f.Close()
			w = f
		}
		n, err := loadgen.WriteJSONL(ctx, w, g, labelW)
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Told to stop (Ctrl-C, SIGTERM): the file ends with the last whole event, as sendLoad
			// stops; say so, as at the end.
			fmt.Fprintf(stderr, "loadgen: wrote %d events, stopped before --duration's end\n", n)
			return nil
		}
		if err != nil {
			return err // "loadgen: write events: …" already
		}
		fmt.Fprintf(stderr, "loadgen: wrote %d events\n", n)
		return nil
	case *out == "kafka":
		kc := (&app{cfg: cfg}).kafkaConfig()
		log := newLogger(cfg.Log, stderr)
		if err := consumers.EnsureTopics(ctx, kc, (&app{cfg: cfg}).topics(), log); err != nil {
			if ctx.Err() != nil {
				// Told to stop while waiting for the broker: a clean stop, said as sendLoad says it.
				fmt.Fprintf(progress, "loadgen: 0 events sent (0 attack), stopped before --duration's end\n")
				return nil
			}
			return kafkaStartError(ctx, kc.Brokers, err)
		}
		w := consumers.NewWriter(kc, cfg.Kafka.EventsTopic)
		defer w.Close()
		pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey))}
		return sendLoad(ctx, g, *speedup, labelW, progress, retryingPublish(log, pub.Publish))
	default: // toURL
		post := httpPublisher(strings.TrimSuffix(*out, "/")+"/v1/events", cfg.API.Keys)
		return sendLoad(ctx, g, *speedup, labelW, progress, post)
	}
}

// appWithoutKey returns the first app of the stream lc makes (its apps, then its large app) that
// has no key in keys, and the flag that asked for it; "" when every one has a key. Without
// --apps the apps are the keys' own.
func appWithoutKey(lc loadgen.Config, keys map[string]string) (app, flag string) {
	for _, a := range lc.Apps {
		if _, ok := keys[a]; !ok {
			return a, "--apps"
		}
	}
	if _, ok := keys[lc.LargeApp]; lc.LargeApp != "" && !ok {
		return lc.LargeApp, "--large-app"
	}
	return "", ""
}

// sameFile reports whether two output arguments name one destination: both - (stdout), or paths
// to the same file.
func sameFile(a, b string) bool {
	if a == "-" || b == "-" {
		return a == b
	}
	if ia, err := os.Stat(a); err == nil {
		if ib, err := os.Stat(b); err == nil {
			return os.SameFile(ia, ib)
		}
	}
	aa, err1 := filepath.Abs(a)
	ab, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ab
}

func firstKey(keys map[string]string) (string, string) {
	best := ""
	for k := range keys {
		if best == "" || k < best {
			best = k
		}
	}
	return best, keys[best]
}

// retryingPublish retries a batch the broker did not take for a reason that may pass (broker
// away, leader moving) with backoff, logging the outage once when it starts and once when it
// ends, so that traffic keeps flowing through a broker restart instead of loadgen exiting at the
// first refused connection. A batch the broker refuses for good (consumers.IsRejection) fails.
// Re-sent events keep their event ids: the pipeline counts them once.
func retryingPublish(log *slog.Logger, publish func(context.Context, []schemas.VerifyEvent) error) func(context.Context, []schemas.VerifyEvent) error {
	return func(ctx context.Context, evs []schemas.VerifyEvent) error {
		var rejected error
		err := consumers.Retry(ctx, log, "publishing events", 100*time.Millisecond, 5*time.Second, func(ctx context.Context) error {
			err := publish(ctx, evs)
			if err != nil && consumers.IsRejection(err) {
				rejected = err
				return nil
			}
			return err
		})
		if rejected != nil {
			return rejected
		}
		return err
	}
}

// labelled yields labelled events in time order (*loadgen.Generator).
type labelled interface {
	Next() (loadgen.Labeled, bool)
	Config() loadgen.Config
}

// maxPublishRetryAfter bounds the wait loadgen takes from a Retry-After, in seconds.
const maxPublishRetryAfter = 60

// sendLoad publishes the generator's events in batches, paced to event time sped up by speedup
// (1 = real time; 0 = as fast as possible).
func sendLoad(ctx context.Context, g labelled, speedup float64, labels io.Writer, stdout io.Writer, publish func(context.Context, []schemas.VerifyEvent) error) error {
	var lw *bufio.Writer
	if labels != nil {
		lw = bufio.NewWriter(labels)
		defer lw.Flush()
	}
	wallStart, evStart := time.Now(), g.Config().Start
	sent, attacks := 0, 0
	batch := make([]schemas.VerifyEvent, 0, 500)
	stopping := false
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := publish(ctx, batch); err != nil {
			if ctx.Err() != nil && !stopping {
				// Told to stop while the batch was on its way: it stays, and goes out with the
				// stop below like the rest generated.
				return nil
			}
			return fmt.Errorf("loadgen: publish after %d events: %w", sent, err)
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	tick := time.Now()
	for ctx.Err() == nil {
		l, ok := g.Next()
		if !ok {
			break
		}
		if speedup > 0 {
			due := wallStart.Add(time.Duration(float64(l.Event.TS.Sub(evStart)) / speedup))
			if wait := time.Until(due); wait > 0 {
				if err := flush(); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					continue // stopped: say what was sent
				case <-time.After(wait):
				}
			}
		}
		batch = append(batch, l.Event)
		if l.Attack {
			attacks++
		}
		if lw != nil {
			b, _ := json.Marshal(loadgen.LabelLine{EventID: l.Event.EventID, AppID: l.Event.AppID, Label: l.Label, Attack: l.Attack})
			lw.Write(append(b, '\n'))
		}
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
		if time.Since(tick) > 5*time.Second {
			tick = time.Now()
			fmt.Fprintf(stdout, "loadgen: %d events sent (%d attack)\n", sent, attacks)
		}
	}
	stopped := ""
	if ctx.Err() != nil {
		// Told to stop (Ctrl-C, SIGTERM): the events generated so far — their labels are written —
		// still go out, for a few seconds at most; then what was sent is said, as at the end.
		stopped = ", stopped before --duration's end"
		stopping = true
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loadgen: %d events sent (%d attack) in %s%s\n", sent, attacks, time.Since(wallStart).Round(time.Millisecond), stopped)
	return nil
}

// httpPublisher posts batches to riskflow's /v1/events: the events of each app of a batch in one
// request, with that app's key of keys (an app key may only publish its own app_id), apps in the
// order they first appear in the batch. It keeps to what the node takes, as a verify service
// should: a request refused as too large (413: more events than api.events_per_app lets an app
// send at once, or over api.max_body_bytes) is sent again in halves, and one answered 429 or 503
// with Retry-After is sent again after that wait (events are deduplicated by app and id). It
// stopped at the first such answer: a node configured with api.events_per_app below its batches
// of 500 refused every run.
func httpPublisher(url string, keys map[string]string) func(context.Context, []schemas.VerifyEvent) error {
	client := &http.Client{Timeout: 10 * time.Second}
	var post func(ctx context.Context, app string, evs []schemas.VerifyEvent) error
	post = func(ctx context.Context, app string, evs []schemas.VerifyEvent) error {
		secret, ok := keys[app]
		if !ok {
			return fmt.Errorf("no key of app %s in api.keys to POST its events", schemas.Excerpt(app, schemas.MaxAppIDLen))
		}
		body, err := json.Marshal(evs)
		if err != nil {
			return err
		}
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.SetBasicAuth(app, secret)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			switch {
			case resp.StatusCode == http.StatusAccepted:
				return nil
			case resp.StatusCode == http.StatusRequestEntityTooLarge && len(evs) > 1:
				half := len(evs) / 2
				if err := post(ctx, app, evs[:half]); err != nil {
					return err
				}
				return post(ctx, app, evs[half:])
			case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && wait > 0:
				t := time.NewTimer(time.Duration(min(wait, maxPublishRetryAfter)) * time.Second)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("POST %s: %s, told to wait %ds: %w", url, resp.Status, wait, ctx.Err())
				}
			default:
				return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
			}
		}
	}
	return func(ctx context.Context, evs []schemas.VerifyEvent) error {
		var apps []string
		byApp := map[string][]schemas.VerifyEvent{}
		for _, ev := range evs {
			if _, ok := byApp[ev.AppID]; !ok {
				apps = append(apps, ev.AppID)
			}
			byApp[ev.AppID] = append(byApp[ev.AppID], ev)
		}
		for _, app := range apps {
			if err := post(ctx, app, byApp[app]); err != nil {
				return err
			}
		}
		return nil
	}
}
