package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/geo"
)

// cmdLookup shows what riskflow knows of one phone, IP or device: the live feature state of a
// running API node (POST /v1/admin/explain: every window, its value, the rules matching and within
// reach), then the recent attempts with their scores and the decisions served, from ClickHouse —
// of one app with --app, in a range (--since, --until), a page at a time (--limit, --offset).
// The phone is given in plaintext and hashed here with scoring.phone_hash_key, as stored.
func cmdLookup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lookup", stderr)
	var cf commonFlags
	cf.register(fs)
	phone := fs.String("phone", "", "a phone number as written (+86/0086 prefix, spaces, dashes, brackets, full-width digits); hashed with scoring.phone_hash_key")
	ip := fs.String("ip", "", "an IP address")
	device := fs.String("device", "", "a device id; the history lists every spelling of it the device windows count as one (case, spaces)")
	app := fs.String("app", "", "app_id: only this app's attempts and decisions, and the app's windows in the live state")
	since := &timeFlag{span: 24 * time.Hour}
	fs.Var(since, "since", "read attempts and decisions stamped from: a span back from now (24h, 90m, 7d), an RFC 3339 time (2026-12-06T10:00:00Z) or a date (its UTC midnight), as backtest --from")
	until := &timeFlag{}
	fs.Var(until, "until", "read attempts and decisions stamped before: a span back from now (2h, 1d), an RFC 3339 time, a date or now (default: no end)")
	limit := fs.Int("limit", 20, "attempts and decisions to show, newest first")
	offset := fs.Int("offset", 0, "leave out the newest N of each list: the next page (lookup prints the flags of the next page when --limit cut a list)")
	apiURL := fs.String("api", "", "API node whose live state to show (default: api.listen, https with api.tls_cert); none to skip")
	adminCred := fs.String("admin", "", "admin name:secret for the API (default: the first of api.admin_keys)")
	asJSON := fs.Bool("json", false, "print everything as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("lookup: takes no arguments, got %s (quote a number written with spaces: --phone \"+86 1xx xxxx xxxx\")", schemas.Excerpt(fs.Arg(0), 40))
	}
	n := 0
	for _, v := range []string{*phone, *ip, *device} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("lookup: give exactly one of --phone, --ip, --device")
	}
	if *limit < 1 {
		return usagef("--limit: %d is not positive: give how many attempts and decisions to show", *limit)
	}
	if since.at.IsZero() && since.span <= 0 {
		return usagef("--since: %s is not positive: give how far back to read, e.g. 24h", shortDuration(since.span))
	}
	if *offset < 0 {
		return usagef("--offset: %d is negative: give how many of the newest rows to leave out", *offset)
	}
	now := time.Now()
	rng := chsink.LookupRange{AppID: *app, Since: since.resolve(now), Offset: *offset}
	if until.set {
		rng.Until = until.resolve(now)
		if !rng.Until.After(rng.Since) {
			return usagef("--until: %s is not after --since %s", rng.Until.UTC().Format(time.RFC3339), rng.Since.UTC().Format(time.RFC3339))
		}
		if rng.Until.Unix() > math.MaxUint32 {
			rng.Until = time.Time{} // past anything ClickHouse stores: no end
		}
	}
	if *apiURL != "" && *apiURL != "none" {
		if u, err := url.Parse(*apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--api: %s is not an http:// or https:// URL of an API node (e.g. http://127.0.0.1:8080), nor none", schemas.Excerpt(redactedURL(*apiURL), 80))
		}
	}
	// A device or app id is checked as the API checks it (which refuses one holding a phone number).
	if err := schemas.CheckDeviceID("device_id", *device, schemas.MaxDeviceIDLen); err != nil {
		return usagef("--device: %s", err.(*schemas.FieldError).Reason)
	}
	if err := schemas.CheckID("app_id", *app, schemas.MaxAppIDLen); err != nil {
		return usagef("--app: %s", err.(*schemas.FieldError).Reason)
	}
	if *adminCred != "" && !strings.Contains(*adminCred, ":") {
		return usagef("--admin: want name:secret")
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	var key chsink.LookupKey
	req := api.ExplainRequest{DeviceID: *device, AppID: *app}
	switch {
	case *phone != "":
		// Numbers as people write them: "+86 138 1234 5678", "0086-138-1234-5678", "(138)1234.5678".
		p, err := schemas.ReadWrittenPhone(*phone)
		if err != nil {
			return usagef("--phone: %s", err.(*schemas.FieldError).Reason)
		}
		// Without the key the number's hash matches nothing stored: "0 attempts" would be a lie.
		if cfg.Scoring.PhoneHashKey == "" {
			return configf("scoring.phone_hash_key: required to look up a phone as stored (RISKFLOW_SCORING_PHONE_HASH_KEY: the key the scorers and API nodes use; riskflow dev and demo without one use %q)", devHashKey)
		}
		key.PhoneHash = schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey)).Hex(p)
		req.Phone = p
	case *ip != "":
		a, err := schemas.ParseIP(*ip)
		if err != nil {
			return usagef("--ip: %s", err.(*schemas.FieldError).Reason)
		}
		// The history of an address embedding an IPv4 address (64:ff9b::a.b.c.d, 6to4, Teredo)
		// is that IPv4 address's, in every stored form, as the windows count it.
		key.IP, req.IP = geo.ClientAddr(a).String(), a.String()
	default:
		key.DeviceID = *device
	}

	out := lookupResult{byPhone: *phone != "", App: *app, Since: rng.Since.UTC(), Offset: *offset, limit: *limit, span: since.span}
	if !rng.Until.IsZero() {
		u := rng.Until.UTC()
		out.Until = &u
	}
	// The live state, from a running API node.
	base := *apiURL
	if base == "" {
		base = defaultAPIURL(cfg)
	}
	if base == "none" {
		out.LiveSkipped = true
	} else {
		name, secret, _ := strings.Cut(*adminCred, ":")
		if *adminCred == "" {
			names := make([]string, 0, len(cfg.API.AdminKeys))
			for n := range cfg.API.AdminKeys {
				names = append(names, n)
			}
			sort.Strings(names)
			if len(names) > 0 {
				name, secret = names[0], cfg.API.AdminKeys[names[0]]
			}
		}
		x, err := explainOver(ctx, base, name, secret, req)
		if err != nil {
			// Printed and returned: a number the failure quotes (the URL, a server's text) masked.
			out.LiveError = schemas.MaskPhones(err.Error())
		} else {
			out.Live = x
		}
	}
	// The history, from ClickHouse.
	if cfg.ClickHouse.Addr == "" {
		out.HistoryError = "clickhouse.addr is not set (RISKFLOW_CLICKHOUSE_ADDR)"
		out.historyUnset = true
	} else {
		st, err := openStore(ctx, cfg.ClickHouse, nil)
		if err == nil {
			defer st.Close()
			// One more than shown: whether --limit cut the list, so that "2" never reads as all.
			out.Attempts, out.Decisions, err = st.Lookup(ctx, key, rng, *limit+1)
			if len(out.Attempts) > *limit {
				out.Attempts, out.MoreAttempts = out.Attempts[:*limit], true
			}
			if len(out.Decisions) > *limit {
				out.Decisions, out.MoreDecisions = out.Decisions[:*limit], true
			}
			// None found is an empty list in --json, as attempts were: null broke scripts that
			// iterate over the decisions of a number that had attempts only.
			if err == nil && out.Attempts == nil {
				out.Attempts = []chsink.Attempt{}
			}
			if err == nil && out.Decisions == nil {
				out.Decisions = []chsink.StoredDecision{}
			}
			if err == nil {
				out.Next = out.nextPage()
			}
		}
		if err != nil {
			// Named with the setting to check: the driver's text says only what failed.
			out.HistoryError = schemas.MaskPhones(fmt.Sprintf("ClickHouse %s, database %s (clickhouse.addr, clickhouse.database): %v",
				cfg.ClickHouse.Addr, cfg.ClickHouse.Database, err))
		}
	}
	if *asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		out.write(stdout)
	}
	return out.err()
}

// err is what lookup's exit code says of out: nil when every part asked for was shown, a
// partialError (exit 3) when one was shown and the other failed, an error (exit 1) when nothing
// was. The live state is not asked with --api none; the history is not asked without
// clickhouse.addr (a deployment without ClickHouse) — a part not asked is no failure, unless
// nothing at all is shown.
func (l *lookupResult) err() error {
	historyAsked := !l.historyUnset
	switch {
	case l.Live == nil && l.HistoryError != "":
		if l.LiveSkipped {
			return fmt.Errorf("lookup: no history (%s), and the live state was not asked (--api none)", l.HistoryError)
		}
		return fmt.Errorf("lookup: no live state (%s) and no history (%s)", l.LiveError, l.HistoryError)
	case historyAsked && l.HistoryError != "":
		return partialError{fmt.Errorf("lookup: history unavailable (%s); only the live state was printed", l.HistoryError)}
	case l.Live == nil && !l.LiveSkipped:
		return partialError{fmt.Errorf("lookup: live state unavailable (%s); only the history was printed (--api none not to ask an API node)", l.LiveError)}
	}
	return nil
}

// defaultAPIURL is the URL of the API node of cfg, as lookup asks it without --api: https when
// api.tls_cert is set, the loopback address when api.listen is every address (":8080",
// "0.0.0.0:8080").
func defaultAPIURL(cfg Config) string {
	scheme := "http://"
	if cfg.API.TLSCert != "" {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(cfg.API.Listen)
	if err != nil {
		return scheme + cfg.API.Listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + net.JoinHostPort(host, port)
}

type lookupResult struct {
	Live        *api.ExplainResponse    `json:"live,omitempty"`
	LiveError   string                  `json:"live_error,omitempty"`
	LiveSkipped bool                    `json:"live_skipped,omitempty"` // --api none
	byPhone     bool                    // history looked up by the number's keyed hash
	Attempts    []chsink.Attempt        `json:"attempts"`
	Decisions   []chsink.StoredDecision `json:"decisions"`
	// MoreAttempts and MoreDecisions: --limit cut the list; the range holds older ones.
	MoreAttempts  bool   `json:"more_attempts,omitempty"`
	MoreDecisions bool   `json:"more_decisions,omitempty"`
	HistoryError  string `json:"history_error,omitempty"`
	historyUnset  bool   // clickhouse.addr not set: the history was not asked
	// The history's range as read: the app (--app; none: every app), from Since (inclusive) to
	// Until (exclusive; none: no end), past the newest Offset of each list.
	App    string     `json:"app,omitempty"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until,omitempty"`
	Offset int        `json:"offset,omitempty"`
	// Next is the next page when --limit cut a list: the same range pinned (absolute times) and
	// the offset past the rows shown.
	Next  *lookupPage `json:"next_page,omitempty"`
	limit int
	span  time.Duration // --since as a span back from now (0: a time): the range is written as that span
}

// lookupPage is the range of one page of a lookup's history, as --since, --until and --offset.
type lookupPage struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Offset int       `json:"offset"`
}

// flags writes p as lookup's flags.
func (p *lookupPage) flags() string {
	return fmt.Sprintf("--since %s --until %s --offset %d", p.Since.UTC().Format(time.RFC3339), p.Until.UTC().Format(time.RFC3339), p.Offset)
}

// nextPage is the page after this one when --limit cut a list, else nil. Its range is this one's
// with both ends as times: with a span the range moves with the clock, and rows stamped meanwhile
// would shift the offsets. Without --until the range ends after the newest row of either list
// (ts is stored to the second: the second after it) — the rows this page counted, and no row
// stored since that is stamped later; with --offset and no --until, at the time of the read.
func (l *lookupResult) nextPage() *lookupPage {
	if !l.MoreAttempts && !l.MoreDecisions {
		return nil
	}
	p := &lookupPage{Since: l.Since, Offset: l.Offset + l.limit}
	switch {
	case l.Until != nil:
		p.Until = *l.Until
	case l.Offset == 0:
		var newest time.Time
		if len(l.Attempts) > 0 {
			newest = l.Attempts[0].TS
		}
		if len(l.Decisions) > 0 && l.Decisions[0].TS.After(newest) {
			newest = l.Decisions[0].TS
		}
		p.Until = newest.Truncate(time.Second).Add(time.Second)
	default:
		p.Until = time.Now().Truncate(time.Second).Add(time.Second)
	}
	p.Until = p.Until.UTC()
	return p
}

// rangeText is the history's range as the headings write it: "24h" for --since 24h alone, else
// its two ends; with the app and the offset.
func (l *lookupResult) rangeText() string {
	var r string
	switch {
	case l.span > 0 && l.Until == nil:
		r = shortDuration(l.span)
	case l.Until == nil:
		r = "since " + l.Since.Format(time.RFC3339)
	default:
		r = l.Since.Format(time.RFC3339) + " to " + l.Until.Format(time.RFC3339)
	}
	if l.App != "" {
		r = "app " + l.App + ", " + r
	}
	return r
}

// tlsHint says how to reach a node whose certificate this process does not take: one from a
// private CA (lookup had said only "x509: certificate signed by unknown authority"), or one for a
// name other than the address asked (without --api, lookup asks api.listen's address, often
// 127.0.0.1, of a certificate for the service's DNS name).
func tlsHint(err error) string {
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
	)
	switch {
	case errors.As(err, &ua):
		return " (a certificate from a private CA: give its CA certificate as SSL_CERT_FILE=ca.pem, or SSL_CERT_DIR)"
	case errors.As(err, &he):
		return " (the certificate names another host: ask the node by a name it holds, --api https://NAME:PORT)"
	}
	return ""
}

// explainOver asks an API node's POST /v1/admin/explain.
func explainOver(ctx context.Context, base, name, secret string, req api.ExplainRequest) (*api.ExplainResponse, error) {
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/admin/explain", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	if name != "" {
		r.SetBasicAuth(name, secret)
	}
	shown := redactedURL(base) // a secret in the URL's user info is never printed
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, fmt.Errorf("live state from %s: %w%s", shown, err, tlsHint(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		var eb schemas.ErrorBody
		_ = json.Unmarshal(b, &eb)
		if eb.Content == "" {
			eb.Content = http.StatusText(resp.StatusCode) + " (is this a riskflow API node?)"
		}
		return nil, fmt.Errorf("live state from %s: %d %s", shown, resp.StatusCode, eb.Content)
	}
	var x api.ExplainResponse
	if err := schemas.UnmarshalJSON(b, &x, "at"); err != nil {
		return nil, fmt.Errorf("live state from %s: %w", shown, err)
	}
	return &x, nil
}

// redactedURL is raw as an error may show it: with the password of its user info, if any, as
// "xxxxx" (--api http://name:secret@host printed the secret in lookup's error and --json's
// live_error).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i, j := strings.Index(raw, "://"), strings.LastIndexByte(raw, '@'); i >= 0 && j > i {
			return raw[:i+3] + "xxxxx" + raw[j:] // unparsable, but user info all the same
		}
		return raw
	}
	return u.Redacted()
}

// cell is a stored free-text value (an app, event, device or decision id, an error code: as the
// app sent it) for the terminal: schemas.Visible.
func cell(s string) string { return schemas.Visible(s) }

func (l *lookupResult) write(w io.Writer) {
	tw := newColumns(w) // text/tabwriter's alignment, by the columns a terminal gives a character
	defer tw.Flush()
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	if l.Live == nil {
		if l.LiveSkipped {
			p("live state: not asked (--api none)\n")
		} else {
			p("live state: unavailable (%s)\n", l.LiveError)
		}
	} else {
		x := l.Live
		// The subject names the device as the app sent it: a bidi override in its id reversed
		// the rest of the line.
		p("live state of %s at %s (rules %s)\n", cell(x.Subject), x.At.Format(time.RFC3339), x.RulesVersion)
		if x.Stale != "" {
			// The state of a node that has not read Kafka for a while: its latest attempts are
			// missing from every window below.
			p("  NOT CURRENT: %s (attempts since then are missing from these windows)\n", x.Stale)
		}
		p("  window\tvalue\tread by the pack\n")
		for _, v := range x.Windows {
			if v.Value == 0 && !v.ReadByPack {
				continue
			}
			read := ""
			if v.ReadByPack {
				read = "yes"
			}
			p("  %s\t%d\t%s\n", v.Name, v.Value, read)
		}
		p("  rules matching now:\n")
		for _, r := range x.Matching {
			p("    %s\t%s %d (%s)\t%s\n", r.Rule, r.Tag, r.Level, r.Mode, r.Reason)
		}
		if len(x.Matching) == 0 {
			p("    none\n")
		}
		p("  within reach (would match once the windows grow by):\n")
		for _, r := range x.Near {
			p("    %s\t×%g\t%s %d (%s)\t%s\n", r.Rule, r.Factor, r.Tag, r.Level, r.Mode, r.When)
		}
		if len(x.Near) == 0 {
			p("    none\n")
		}
		if len(x.InAppOnly) > 0 {
			p("  judged in an app only (its windows there; give --app): %s\n", strings.Join(x.InAppOnly, ", "))
		}
		if len(x.Failing) > 0 {
			p("  failing at run time on this state (skipped, as checks skip them): %s\n", strings.Join(x.Failing, ", "))
		}
	}
	if l.HistoryError != "" {
		p("\nhistory: unavailable (%s)\n", l.HistoryError)
		return
	}
	if l.byPhone && len(l.Attempts) == 0 && len(l.Decisions) == 0 {
		p("\nnothing stored under this number's hash in %s: if there should be, check that scoring.phone_hash_key is the key the scorers and API nodes use\n", l.rangeText())
	}
	p("\nrecent attempts (%s, newest first): %s\n", l.rangeText(), shownCount(len(l.Attempts), l.Offset, l.MoreAttempts))
	p("  time\tapp\tevent\tnumber\tip\tdevice\toutcome\tscore\ttags\tdecision\n")
	for _, a := range l.Attempts {
		p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.TS.Format(time.RFC3339), cell(a.AppID), cell(a.EventID), a.PhoneMasked, a.IP, cell(a.DeviceID),
			a.Outcome+" "+cell(a.ErrorCode), a.Score, strings.Join(a.Tags, ","), cell(a.DecisionID))
	}
	p("\ndecisions served (%s, newest first): %s\n", l.rangeText(), shownCount(len(l.Decisions), l.Offset, l.MoreDecisions))
	// The hits last, each with its reason: what a disputed verdict rested on, with the numbers.
	p("  time\tapp\tdecision\tnumber\tip\tdevice\tscore\ttags\tlatency\trules\thits\n")
	for _, d := range l.Decisions {
		var hits []string
		for i, r := range d.HitRules {
			if i < len(d.HitModes) && d.HitModes[i] != "enforce" {
				r += "(" + d.HitModes[i] + ")"
			}
			if i < len(d.HitReasons) && d.HitReasons[i] != "" {
				r += ": " + d.HitReasons[i]
			}
			hits = append(hits, r)
		}
		p("  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%dµs\t%s\t%s\n", d.TS.Format(time.RFC3339), cell(d.AppID), cell(d.DecisionID), d.PhoneMasked, d.IP, cell(d.DeviceID),
			d.Score, strings.Join(d.Tags, ","), d.LatencyUS, d.RulesVersion, strings.Join(hits, "; "))
	}
	if l.Next != nil {
		// Flushed first: the command line is one line, not a column of the table above.
		tw.Flush()
		fmt.Fprintf(w, "\nnext page (the same range and lookup, the next --limit %d of each list): %s\n", l.limit, l.Next.flags())
	}
}

// shownCount is how many rows of a list lookup printed, past the newest offset, and whether
// --limit left older ones out.
func shownCount(n, offset int, more bool) string {
	switch {
	case offset == 0 && !more:
		return strconv.Itoa(n)
	case offset == 0:
		return fmt.Sprintf("the newest %d, more in this range (--limit %d reached: see the next page below, raise --limit, or narrow --since/--until)", n, n)
	case n == 0:
		return fmt.Sprintf("none past the newest %d", offset)
	case !more:
		return fmt.Sprintf("%d (the %d–%d newest: the last of this range)", n, offset+1, offset+n)
	}
	return fmt.Sprintf("the %d–%d newest, more in this range (see the next page below)", offset+1, offset+n)
}

// lookupSince is the start of the history `--since span` asks for: span before now, or ClickHouse's
// first storable second when span reaches further back (everything stored).
func lookupSince(now time.Time, span time.Duration) time.Time {
	first := time.Unix(1, 0)
	if now.Sub(first) <= span {
		return first
	}
	return now.Add(-span)
}

// timeFlag is a --since or --until point: a span back from now (24h, 90m, 7d, as spanFlag reads
// it), an RFC 3339 time (2026-12-06T10:00:00Z, 2026-12-06T18:00:00+08:00), a date (2026-12-06:
// its UTC midnight) or now.
type timeFlag struct {
	span time.Duration
	at   time.Time // zero for a span
	set  bool
}

func (f *timeFlag) String() string {
	switch {
	case !f.at.IsZero():
		return f.at.Format(time.RFC3339)
	case f.set || f.span != 0:
		return shortDuration(f.span)
	}
	return ""
}

// Set reads the forms backtest's --from and --to take (parseWhen), with the same meaning: a date
// is its UTC midnight, now is a span of 0.
func (f *timeFlag) Set(s string) error {
	if s == "now" {
		*f = timeFlag{set: true}
		return nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		*f = timeFlag{at: t, set: true}
		return nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		*f = timeFlag{at: t, set: true}
		return nil
	}
	// A span back from now, with or without a '-' before it, as backtest --from reads it: -1h and
	// 1h are both an hour ago; --5h (a span after now) is no time before now.
	var sp spanFlag
	if err := sp.Set(strings.TrimPrefix(s, "-")); err != nil || sp < 0 {
		return errors.New("want a span like 24h, 90m or 7d back from now, an RFC 3339 time like 2026-12-06T10:00:00Z, a date (its UTC midnight) or now")
	}
	*f = timeFlag{span: time.Duration(sp), set: true}
	return nil
}

// resolve is the point f names, read at now; a time before what ClickHouse stores is its first
// storable second.
func (f *timeFlag) resolve(now time.Time) time.Time {
	if f.at.IsZero() {
		return lookupSince(now, f.span)
	}
	if first := time.Unix(1, 0); f.at.Before(first) {
		return first
	}
	return f.at
}

// spanFlag is a --since span: a Go duration (24h, 90m) or a number of days (7d, 1d12h).
type spanFlag time.Duration

// maxSpanDays is the most whole days a time.Duration holds.
const maxSpanDays = math.MaxInt64 / int64(24*time.Hour)

func (f *spanFlag) String() string { return shortDuration(time.Duration(*f)) }

func (f *spanFlag) Set(s string) error {
	var days time.Duration
	rest := s
	if d, r, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.ParseUint(d, 10, 64)
		if err != nil {
			return errors.New("want a span like 24h, 90m or 7d")
		}
		if n > uint64(maxSpanDays) { // 100000d read as no span at all
			return fmt.Errorf("want a span like 24h, 90m or 7d (at most %dd)", maxSpanDays)
		}
		days, rest = time.Duration(n)*24*time.Hour, r
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return errors.New("want a span like 24h, 90m or 7d")
		}
	}
	// A span past time.Duration's range (65535d2562047h) wrapped around to a negative one: read
	// as a time after now by backtest --from.
	if d > math.MaxInt64-days {
		return fmt.Errorf("want a span like 24h, 90m or 7d (at most %dd)", maxSpanDays)
	}
	*f = spanFlag(days + d)
	return nil
}

// shortDuration writes d as people write it: 24h, 90m, 1h30m — not 24h0m0s.
func shortDuration(d time.Duration) string {
	// Whole days of two or more as --since takes them: "--since 7d" read back as 7d, not 168h.
	if day := 24 * time.Hour; d >= 2*day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
