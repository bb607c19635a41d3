package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/schemas"
)

// Dev credentials, used when no api.keys are configured.
const (
	devAppKey  = "demo"
	devSecret  = "demo-secret"
	devHashKey = "riskflow-dev-only-phone-hash-key"
)

// cmdDev runs every role in one process on an embedded Kafka-protocol broker (kfake): no setup.
func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	var cf commonFlags
	cf.register(fs)
	listen := fs.String("listen", "", "API listen address (default api.listen, 127.0.0.1:8080); port 0 picks a free port")
	sample := fs.Bool("sample", true, "publish a sample event stream and print a verdict")
	once := fs.Bool("once", false, "exit after the sample verdict is printed")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(func(c *Config) {
		if len(c.API.Keys) == 0 {
			c.API.Keys = map[string]string{devAppKey: devSecret}
		}
		if c.Scoring.PhoneHashKey == "" {
			c.Scoring.PhoneHashKey = devHashKey
		}
		c.Scoring.Replay = false // the embedded broker starts empty
		// No feature snapshots, as demo keeps none: the embedded broker's topics are gone when
		// dev ends, and a deployment's configuration names the nodes' snapshot directory, where
		// dev wrote its snapshot, .prev and lock under the deployment's own topic's name.
		c.Scoring.SnapshotDir = ""
	})
	if err != nil {
		return err
	}
	if *listen == "" {
		*listen = cfg.API.Listen
	}
	if !hostPort(*listen) {
		return usagef("dev: --listen %q is not host:port (e.g. 127.0.0.1:8080, or 127.0.0.1:0 for a free port)", *listen)
	}
	log := newLogger(cfg.Log, stderr)
	if cfg.API.Keys[devAppKey] == devSecret && !loopbackOnly(*listen) {
		log.Warn("the API listens beyond this machine with the dev key printed in the README (demo / demo-secret): whoever reaches it can publish events and ask for verdicts; set api.keys, or listen on 127.0.0.1", "listen", *listen)
	}

	stopBroker, err := embeddedBroker(&cfg)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer stopBroker()
	log.Info("embedded Kafka-protocol broker (kfake) started", "addr", cfg.Kafka.Brokers[0])

	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listening := make(chan string, 1)
	g, gctx, err := a.startAllRoles(ctx, *listen, listening)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped (Ctrl-C) while starting: a clean stop, said as serve's and a running dev's.
			log.Info("riskflow dev stopped")
			return nil
		}
		return fmt.Errorf("dev: %w", err)
	}

	// The archiver retries an unreachable ClickHouse for ever, quietly from the user's side: say
	// so at start, and make --once (a smoke test of the configuration) fail on it.
	checkHistory := sync.OnceValue(func() error {
		if cfg.ClickHouse.Addr == "" {
			return nil
		}
		if err := pingClickHouse(gctx, cfg.ClickHouse, log); err != nil && gctx.Err() == nil {
			return err
		}
		return nil
	})
	if !*once {
		go func() {
			if err := checkHistory(); err != nil {
				log.Warn("ClickHouse does not answer: verdicts are not archived until it does (the archiver retries)", "clickhouse.addr", cfg.ClickHouse.Addr, "err", err)
			}
		}()
	}

	switch {
	case *sample:
		g.Go(func() error {
			var addr string
			select {
			case addr = <-listening:
			case <-gctx.Done():
				return nil
			}
			if *once {
				if err := checkHistory(); err != nil {
					return fmt.Errorf("dev --once: %w", err)
				}
			}
			if err := runSample(gctx, a, selfURL(cfg, addr), sampleApp(cfg.API.Keys), *once, stdout); err != nil {
				return fmt.Errorf("dev sample: %w", err)
			}
			if *once {
				cancel()
			}
			return nil
		})
	case *once:
		// Nothing to publish: exit once the node is ready (a smoke test of the configuration).
		g.Go(func() error {
			var addr string
			select {
			case addr = <-listening:
			case <-gctx.Done():
				return nil
			}
			// The history first: an unreachable ClickHouse is named as such at once, rather than
			// as an archiver that is not ready after 30 s.
			if err := checkHistory(); err != nil {
				return fmt.Errorf("dev --once: %w", err)
			}
			if err := waitReady(gctx, a); err != nil {
				return fmt.Errorf("dev: %w", err)
			}
			fmt.Fprintf(stdout, "riskflow dev was ready at %s; stopping (--once)\n", selfURL(cfg, addr))
			cancel()
			return nil
		})
	}
	err = g.Wait()
	if err == nil || errors.Is(err, context.Canceled) {
		if !*once {
			log.Info("riskflow dev stopped") // as serve says: the Ctrl-C it asked for was heard and done
		}
		return nil
	}
	return err
}

// loopbackOnly reports whether a listen address (host:port) accepts connections from this machine
// only: a loopback IP, or localhost. ":8080", 0.0.0.0 and any other host are reachable from outside.
func loopbackOnly(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// pingClickHouse reports whether the archiver's ClickHouse answers, within its dial timeout.
func pingClickHouse(ctx context.Context, c ClickHouseConfig, log *slog.Logger) error {
	st, err := openStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse.addr %s does not answer, so the archiver cannot store history: %w", c.Addr, err)
	}
	return nil
}

// credentials are the app key and secret the sample uses.
type credentials struct{ key, secret string }

// sampleApp picks the app the sample runs as: the dev app when it is configured (the default),
// otherwise the first configured app key, so a dev run with RISKFLOW_API_KEYS set still works.
func sampleApp(keys map[string]string) credentials {
	if s, ok := keys[devAppKey]; ok {
		return credentials{devAppKey, s}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return credentials{names[0], keys[names[0]]} // cmdDev guarantees at least one key
}

// embeddedBroker starts an in-process Kafka-protocol broker (kfake) and points cfg at it.
func embeddedBroker(cfg *Config) (stop func(), err error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	return cluster.Close, nil
}

// startAllRoles runs every role in this process (allInOne: the archiver when ClickHouse is
// configured); the API's address is sent on listening once it accepts connections.
func (a *app) startAllRoles(ctx context.Context, listen string, listening chan<- string) (*errgroup.Group, context.Context, error) {
	a.cfg.API.Listen = listen
	p, note := allInOne(&a.cfg)
	if note != "" {
		a.log.Warn(note)
	}
	if err := p.check(&a.cfg); err != nil {
		return nil, nil, err
	}
	return a.start(ctx, p, startOptions{listen: listen, onListen: func(addr string) { listening <- addr }})
}

// runSample publishes a small stream through the API — ordinary logins, a datacenter farm cycling
// numbers, a hammered number and a replayed token — waits until the scorer has them, then asks for
// verdicts and prints them.
func runSample(ctx context.Context, a *app, base string, app credentials, once bool, out io.Writer) error {
	evs := sampleEvents(time.Now().UTC(), app.key)
	hc := selfClient(a.cfg)
	body, _ := json.Marshal(evs)
	if _, err := call(ctx, hc, base+"/v1/events", app, body); err != nil {
		return err
	}
	// Wait until the feature state has the sample and the node is ready to answer from it.
	deadline := time.Now().Add(30 * time.Second)
	// Ready as the checks need it: an archiver whose ClickHouse is away (dev warns of it) does not
	// hold the sample.
	for a.scorer.State().Stats().Applied < uint64(len(evs)) || a.health.ready(historyChecks...) != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("scorer applied %d of %d sample events within 30 s (ready: %v)", a.scorer.State().Stats().Applied, len(evs), a.health.ready(historyChecks...))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "published %d sample events to %s; the scorer has them.\n\n", len(evs), a.cfg.Kafka.EventsTopic)
	checks := []struct {
		what string
		req  schemas.CheckRequest
	}{
		{"an ordinary login", schemas.CheckRequest{Phone: "13912345678", IP: netip.MustParseAddr("223.104.3.7"), Carrier: "CM", Flow: schemas.FlowOneClickLogin, Platform: "android", DeviceID: "dev-a1", ExID: "sample-1"}},
		{"one more number from the datacenter IP farming numbers", schemas.CheckRequest{Phone: "13700009999", IP: netip.MustParseAddr("47.92.10.20"), Carrier: "CM", Flow: schemas.FlowOneClickLogin, Platform: "android", DeviceID: "farm-1", ExID: "sample-2"}},
		{"a replayed loginToken", schemas.CheckRequest{Phone: "13811112222", IP: netip.MustParseAddr("223.104.9.9"), Carrier: "CM", Flow: schemas.FlowOneClickLogin, Platform: "ios", TokenDigest: sampleToken, ExID: "sample-3"}},
	}
	for _, c := range checks {
		c.req.AppID = app.key
		body, err := json.Marshal(c.req)
		if err != nil {
			return err
		}
		resp, err := call(ctx, hc, base+"/v1/risk/check", app, body)
		if err != nil {
			return err
		}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, resp, "  ", "  ")
		fmt.Fprintf(out, "POST /v1/risk/check — %s:\n  %s\n\n", c.what, pretty.String())
	}
	creds := devCredentials(app, len(a.cfg.API.Keys))
	if once {
		if c := a.cfg.ClickHouse; c.Addr != "" {
			// --once stops the archiver with the process: first let it store the sample, so that
			// what the run printed is in the history it names.
			if err := waitArchived(ctx, a, len(evs)); err != nil {
				return err
			}
			fmt.Fprintf(out, "archived the %d sample events' scores to ClickHouse %s, database %s.\n", len(evs), c.Addr, c.Database)
		}
		fmt.Fprintf(out, "riskflow dev served %s (%s); stopping (--once).\n", base, creds)
	} else {
		fmt.Fprintf(out, "riskflow dev is serving %s (%s). Ctrl-C stops it.\n", base, creds)
	}
	return nil
}

// devCredentials says which credentials the sample used: the dev key with its secret (printed in
// the README), else the configured key it chose — "and the other configured keys" only when there
// are others (with one key configured it read as if more were).
func devCredentials(app credentials, keys int) string {
	switch {
	case app.key == devAppKey && app.secret == devSecret:
		return fmt.Sprintf("app key %q, secret %q", devAppKey, devSecret)
	case keys > 1:
		return fmt.Sprintf("app key %q and the other configured keys", app.key)
	}
	return fmt.Sprintf("app key %q, its secret as configured", app.key)
}

// waitArchived waits until the archiver has stored n score records (at most 30 s).
func waitArchived(ctx context.Context, a *app, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var m dto.Metric
		if err := a.obs.archived.Write(&m); err != nil {
			return err
		}
		stored := int(m.GetCounter().GetValue())
		if stored >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the archiver stored %d of the %d sample events' scores in ClickHouse within 30 s (clickhouse.addr %s)", stored, n, a.cfg.ClickHouse.Addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// historyChecks are the readiness checks of the archiver role's loops, which no check's answer
// rests on.
var historyChecks = []string{"archiver", "decisions"}

// waitReady waits until the node's /readyz?exclude=… would answer ready (at most 30 s).
func waitReady(ctx context.Context, a *app, exclude ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := a.health.ready(exclude...)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within 30 s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

const sampleToken = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func sampleEvents(now time.Time, appID string) []schemas.VerifyEvent {
	var evs []schemas.VerifyEvent
	add := func(id string, ago time.Duration, phone, ip, carrier, device, outcome, token string) {
		ev := schemas.VerifyEvent{
			EventID: id, TS: now.Add(-ago), AppID: appID, Flow: schemas.FlowOneClickLogin,
			Phone: phone, Carrier: carrier, Platform: "android", DeviceID: device, Outcome: outcome, TokenDigest: token,
		}
		ev.IP, _ = schemas.ParseIP(ip)
		evs = append(evs, ev)
	}
	// Ordinary users behind one carrier NAT address and on their own addresses.
	for i := 0; i < 15; i++ {
		add(fmt.Sprintf("sample-nat-%d", i), time.Duration(30-i)*time.Minute, fmt.Sprintf("1390000%04d", i*7), "223.104.3.7", "CM", fmt.Sprintf("dev-%d", i), "success", "")
	}
	// A datacenter address cycling through numbers of one block.
	for i := 0; i < 25; i++ {
		add(fmt.Sprintf("sample-farm-%d", i), time.Duration(9*60-i*20)*time.Second, fmt.Sprintf("1370000%04d", i), "47.92.10.20", "CM", "farm-1", "success", "")
	}
	// A first use of a loginToken (replayed by the check above).
	add("sample-token-1", 2*time.Minute, "13811112222", "223.104.9.9", "CM", "dev-t", "success", sampleToken)
	return evs
}

// selfURL is the base URL of this process's API at addr: https when api.tls_cert is set (the
// sample had posted http:// to its own TLS node and dev stopped on "400 Bad Request: Client sent an
// HTTP request to an HTTPS server").
func selfURL(cfg Config, addr string) string {
	if cfg.API.TLSCert != "" {
		return "https://" + addr
	}
	return "http://" + addr
}

// selfClient calls this process's own API. Over TLS it trusts the certificate api.tls_cert holds
// (its first one, read at each handshake: rotated, it is what the node serves), and no other,
// whatever its issuer and names: a private CA's certificate for the service's DNS name is this
// node's all the same at 127.0.0.1.
func selfClient(cfg Config) *http.Client {
	if cfg.API.TLSCert == "" {
		return http.DefaultClient
	}
	certFile := cfg.API.TLSCert
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true, // verified below: the certificate must be api.tls_cert's
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			b, err := os.ReadFile(certFile)
			if err != nil {
				return fmt.Errorf("read api.tls_cert: %w", err)
			}
			blk, _ := pem.Decode(b)
			if len(raw) == 0 || blk == nil || !bytes.Equal(raw[0], blk.Bytes) {
				return errors.New("the API served another certificate than api.tls_cert's")
			}
			return nil
		},
	}
	return &http.Client{Transport: tr}
}

func call(ctx context.Context, hc *http.Client, url string, app credentials, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(app.key, app.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
