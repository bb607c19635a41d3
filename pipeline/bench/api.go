package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
)

// APIOptions shape the API comparison.
type APIOptions struct {
	Phones   int           // warmed phones (default 1,000,000)
	IPs      int           // warmed IPs (default 100,000)
	Conns    int           // concurrent connections (default 32)
	Duration time.Duration // per measurement (default 5 s)
	// RateShare is the offered rate of the latency runs as a share of the slower endpoint's
	// closed-loop throughput (default 0.5): a rate both endpoints sustain.
	RateShare float64
	// Rate, when positive, is the offered rate of the latency runs instead (to compare two builds
	// at the same rate).
	Rate float64
	// Rounds is how many times each measurement is taken, in turn with the others (default 3):
	// one round's p99 is its slowest 1%, often a few bursts of another process on these cores,
	// and moved the risk/bare ratio from 1.1 to 3.7 between two runs of one build.
	Rounds int
}

func (o APIOptions) withDefaults() APIOptions {
	if o.Phones <= 0 {
		o.Phones = 1_000_000
	}
	if o.IPs <= 0 {
		o.IPs = 100_000
	}
	if o.Conns <= 0 {
		o.Conns = 32
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.RateShare <= 0 || o.RateShare > 1 {
		o.RateShare = 0.5
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	return o
}

// APIResult is the comparison.
type APIResult struct {
	Opts        APIOptions
	WarmTook    time.Duration
	HeapBytes   uint64 // heap growth from warming the state
	RSSBytes    uint64 // process RSS after warming
	StateKeys   int
	BytesPerKey float64
	BareClosed  Latency // the median round of each (by throughput)
	RiskClosed  Latency
	Rate        float64
	BareOpen    Latency // every round's requests pooled
	RiskOpen    Latency
	// BareOpen2 is a second set of rounds of the bare handler, taken in turn with the others: the
	// measurement's own noise (A/A), against which P99Ratio is to be read.
	BareOpen2       Latency
	ThroughputRatio float64 // risk / bare at the same concurrency (target ≥ 0.7)
	P99Ratio        float64 // risk / bare at the same offered rate (target ≤ 1.5)
	NoiseP99Ratio   float64 // bare again / bare
	// P99Interval and NoiseP99Interval are the 95% intervals of the two p99 ratios with the
	// rounds drawn again (RatioInterval).
	P99Interval, NoiseP99Interval [2]float64
	ResponseBytes                 int
}

// Report renders the result for people.
func (r APIResult) Report(w io.Writer) {
	fmt.Fprintf(w, "API: warmed %d phones and %d IPs in %s; heap +%.0f MiB (%.0f bytes per phone, %.0f per key over %d keys), RSS %.0f MiB\n",
		r.Opts.Phones, r.Opts.IPs, r.WarmTook.Round(time.Millisecond), mib(r.HeapBytes), float64(r.HeapBytes)/float64(max(r.Opts.Phones, 1)),
		r.BytesPerKey, r.StateKeys, mib(r.RSSBytes))
	fmt.Fprintf(w, "  closed loop, %d connections, %d alternating rounds of %s, the median round (response %d bytes):\n", r.Opts.Conns, r.Opts.Rounds, r.Opts.Duration, r.ResponseBytes)
	fmt.Fprintf(w, "    bare handler     %s\n", r.BareClosed)
	fmt.Fprintf(w, "    /v1/risk/check   %s\n", r.RiskClosed)
	if r.Opts.Rate > 0 {
		fmt.Fprintf(w, "  open loop at %.0f req/s (--api-rate), every round's requests pooled:\n", r.Rate)
	} else {
		fmt.Fprintf(w, "  open loop at %.0f req/s (%.0f%% of the slower endpoint's throughput), every round's requests pooled:\n", r.Rate, r.Opts.RateShare*100)
	}
	fmt.Fprintf(w, "    bare handler     %s\n", r.BareOpen)
	fmt.Fprintf(w, "    /v1/risk/check   %s\n", r.RiskOpen)
	fmt.Fprintf(w, "    bare again (A/A) %s\n", r.BareOpen2)
	fmt.Fprintf(w, "  throughput ratio risk/bare %.2f (target ≥ 0.70)   p99 ratio risk/bare %.2f %s (target ≤ 1.50: %s)\n",
		r.ThroughputRatio, r.P99Ratio, interval(r.P99Interval), verdict(r.P99Interval, 1.5))
	fmt.Fprintf(w, "  p99 ratio bare/bare (the same handler in a second set of rounds: the measurement's noise) %.2f %s\n", r.NoiseP99Ratio, interval(r.NoiseP99Interval))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// RunAPI warms a scorer with the default pack, serves it and a bare handler on loopback, and
// measures both with the same load generator.
func RunAPI(ctx context.Context, s *scoring.Scorer, o APIOptions, log *slog.Logger) (APIResult, error) {
	o = o.withDefaults()
	res := APIResult{Opts: o}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if err := Warm(ctx, s, o.Phones, o.IPs, time.Now()); err != nil {
		return res, err
	}
	res.WarmTook = time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	res.HeapBytes = after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	res.RSSBytes = rss()
	st := s.State().Stats()
	for _, k := range st.Keys {
		res.StateKeys += k
	}
	if res.StateKeys > 0 {
		res.BytesPerKey = float64(res.HeapBytes) / float64(res.StateKeys)
	}
	log.Info("state warmed", "phones", o.Phones, "ips", o.IPs, "took", res.WarmTook.Round(time.Millisecond), "heap_mib", int(mib(res.HeapBytes)))

	srv := api.New(api.Config{Keys: map[string]string{"bench": "bench-secret"}}, s, nil, api.WithLogger(log))
	riskURL, stopRisk, err := serve(srv)
	if err != nil {
		return res, err
	}
	defer stopRisk()
	bodies := checkBodies(o.Phones, o.IPs, 2000)
	risk := Target{URL: riskURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}

	// The bare handler answers a real verdict's bytes, so both send the same response size.
	sample, err := fetch(risk, bodies[0])
	if err != nil {
		return res, fmt.Errorf("sample verdict: %w", err)
	}
	res.ResponseBytes = len(sample)
	bareURL, stopBare, err := serve(bareHandler(sample))
	if err != nil {
		return res, err
	}
	defer stopBare()
	bare := Target{URL: bareURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}

	// Warm both connection pools and code paths, then measure.
	Closed(ctx, bare, o.Conns, time.Second)
	Closed(ctx, risk, o.Conns, time.Second)
	// Alternating rounds: on a shared machine the load of the moment moves both figures more
	// than the difference between the endpoints does.
	var bareC, riskC []Latency
	for range o.Rounds {
		bareC = append(bareC, Closed(ctx, bare, o.Conns, o.Duration))
		riskC = append(riskC, Closed(ctx, risk, o.Conns, o.Duration))
	}
	tput := func(l Latency) float64 { return l.Throughput }
	res.BareClosed, res.RiskClosed = median(bareC, tput), median(riskC, tput)
	res.Rate = o.RateShare * min(res.BareClosed.Throughput, res.RiskClosed.Throughput)
	if o.Rate > 0 {
		res.Rate = o.Rate
	}
	var bareO, riskO, bareO2 []Latency
	for range o.Rounds {
		bareO = append(bareO, Open(ctx, bare, o.Conns, res.Rate, o.Duration))
		riskO = append(riskO, Open(ctx, risk, o.Conns, res.Rate, o.Duration))
		bareO2 = append(bareO2, Open(ctx, bare, o.Conns, res.Rate, o.Duration))
	}
	res.BareOpen, res.RiskOpen, res.BareOpen2 = Pool(bareO...), Pool(riskO...), Pool(bareO2...)
	if err := ctx.Err(); err != nil {
		// Stopped mid-measure: the figures are of cut-short runs (0 req/s), not a result.
		return res, fmt.Errorf("measure: %w", err)
	}
	if res.BareClosed.Throughput > 0 {
		res.ThroughputRatio = res.RiskClosed.Throughput / res.BareClosed.Throughput
	}
	if res.BareOpen.P99 > 0 {
		res.P99Ratio = float64(res.RiskOpen.P99) / float64(res.BareOpen.P99)
		res.NoiseP99Ratio = float64(res.BareOpen2.P99) / float64(res.BareOpen.P99)
	}
	res.P99Interval[0], res.P99Interval[1] = RatioInterval(riskO, bareO, 0.99, 2000, 1)
	res.NoiseP99Interval[0], res.NoiseP99Interval[1] = RatioInterval(bareO2, bareO, 0.99, 2000, 3)
	return res, nil
}

// Warm applies one event per phone (IPs shared round robin, a device on every third) spread over
// the last 23 hours, so every key is inside the windows. It stops with ctx's error when ctx ends
// (a million phones take tens of seconds).
func Warm(ctx context.Context, s *scoring.Scorer, phones, ips int, now time.Time) error {
	span := 23 * time.Hour
	ev := schemas.VerifyEvent{AppID: "bench", Flow: schemas.FlowOneClickLogin, Carrier: "CM", Platform: "android", Outcome: schemas.OutcomeSuccess}
	var id []byte
	for i := 0; i < phones; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("warm the state: %w", ctx.Err())
		}
		id = strconv.AppendInt(id[:0], int64(i), 10)
		ev.EventID = "warm-" + string(id)
		ev.TS = now.Add(-span + time.Duration(int64(span)*int64(i)/int64(phones)))
		ev.Phone = phoneOf(i)
		ev.IP = ipOf(i % ips)
		ev.DeviceID = ""
		if i%3 == 0 {
			ev.DeviceID = "dev-" + string(id)
		}
		s.Apply(&ev)
	}
	return nil
}

func phoneOf(i int) string { return fmt.Sprintf("139%08d", i%100_000_000) }

func ipOf(i int) netip.Addr {
	// 100.64.0.0/10 (shared address space): many addresses, none on the datacenter list.
	return netip.AddrFrom4([4]byte{100, byte(64 + i>>16&63), byte(i >> 8), byte(i)})
}

func checkBodies(phones, ips, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := (i * 7919) % phones
		out[i] = []byte(fmt.Sprintf(`{"phone":%q,"ip":%q,"app_id":"bench","carrier":"CM","flow":"one_click_login","platform":"android","device_id":"dev-%d","ex_id":"bench-%d"}`,
			phoneOf(p), ipOf(p%ips).String(), p, i))
	}
	return out
}

func bareHandler(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, IdleTimeout: time.Minute}
	go hs.Serve(ln)
	return "http://" + ln.Addr().String(), func() { hs.Close() }, nil
}

func fetch(t Target, body []byte) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, t.URL, strings.NewReader(string(body)))
	req.SetBasicAuth(t.User, t.Pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, err
}

// rss reads the process's resident set size (Linux); 0 elsewhere.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
