// Package console is the risk team's web console, served by the api role under /console: the
// overview of verdicts and rule hits, rule packs from draft to promote (lint, tests, backtest,
// versions, rollback), allow/block lists, and investigation of a phone, IP or device.
//
// Pages are server-rendered html/template; the only scripts are the console's own and the vendored
// uPlot (static/, MIT, see static/uPlot.LICENSE), all embedded in the binary: no CDN. Admins log in
// with the admin keys (api.admin_keys); sessions are signed cookies (Secure, HttpOnly,
// SameSite=Strict) and every POST carries a CSRF token tied to the session (auth.go).
//
// An admin's draft is saved with every action on it; each draft page carries the revision of the
// saved draft it showed, and a save from a page shown before another save (a second tab) is
// refused with what differs, never applied over it unseen (pages.go: draftConflictOf).
//
// Everything the console reads or changes goes through the small interfaces below, declared here
// and implemented in cmd/riskflow. A part a node cannot provide answers ErrNotAvailable and the
// page says so instead of failing.
package console

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/scoring/backtest"
)

// ErrNotAvailable is returned by a part this node cannot provide (no ClickHouse configured, a
// table that does not exist yet); pages show the error's text in place of the part.
var ErrNotAvailable = errors.New("not available on this node")

// ErrInvalid marks input a part refused (a pack that does not compile, a list entry that
// does not parse); the page shows it next to the form.
var ErrInvalid = errors.New("invalid")

// ErrStale wraps a promotion refused because the live pack is no longer the version the draft was
// edited from (answered 409).
var ErrStale = errors.New("the live pack changed")

// PackInfo is the live rule pack.
type PackInfo struct {
	Name     string
	Version  string
	Rules    int
	LoadedBy string
	LoadedAt time.Time
	Content  []byte
	// Note says what a promotion did not reach (e.g. only this node, not recorded); "" when all.
	Note string
}

// Version is one recorded version of a rule pack.
type Version struct {
	Version  string
	Name     string
	LoadedBy string
	LoadedAt time.Time
	Source   string
	Rules    int
	Content  string
}

// LintError is one problem of a draft, at its rule and line (0 when unknown).
type LintError struct {
	Line, Column int
	Rule, Field  string
	Msg          string
}

// TestResult is one rule test's outcome; Failures is empty when it passed.
type TestResult struct {
	Name     string
	Line     int
	Failures []string
}

// RulePacks is the rule pack service: the live pack, its versions, checks of a draft, promotion
// and rollback. Promote and Rollback swap the pack on this node and make it reach every node (the
// pack file, rule_versions); a draft that does not compile is refused with ErrInvalid.
type RulePacks interface {
	Live(ctx context.Context) (PackInfo, error)
	// Versions lists recorded versions, newest first; their Content may be empty.
	Versions(ctx context.Context) ([]Version, error)
	// Version returns one recorded version with its Content (ErrInvalid: no such version).
	Version(ctx context.Context, version string) (Version, error)
	Lint(draft []byte) []LintError
	// Test runs the pack's tests against the draft.
	Test(ctx context.Context, draft []byte) ([]TestResult, error)
	// Promote loads draft after the pack's tests; live, when not "", is the version it was edited
	// from: the draft is loaded only while that version runs, checked as it is swapped in
	// (ErrStale otherwise) — the tests take seconds, and another promotion may land meanwhile.
	Promote(ctx context.Context, draft []byte, who, live string) (PackInfo, error)
	// Rollback loads a recorded version again (ErrInvalid: no such version); live, when not "",
	// is the version it means to undo: loaded only while that version runs, checked as it is
	// swapped in (ErrStale otherwise) — two admins rolling back at once were both told it was done.
	Rollback(ctx context.Context, version, who, live string) (PackInfo, error)
}

// LoadHistory is a RulePacks that also keeps the audit trail: every load of a pack (promotions,
// rollbacks, from the console, the API or the CLI), newest first — Versions keeps each version's
// latest load only. The rules page lists it when the RulePacks has it.
type LoadHistory interface {
	Loads(ctx context.Context) ([]Version, error)
}

// Backtester replays the last hours of history through the live pack and a draft. It calls
// progress from time to time and stops when ctx is cancelled.
type Backtester interface {
	Backtest(ctx context.Context, draft []byte, from, to time.Time, progress func(backtest.Progress)) (*backtest.Report, error)
}

// List entry kinds as the console offers them.
const (
	KindPhone  = "phone"  // stored as the keyed hash of the number only
	KindIP     = "ip"     // one address
	KindCIDR   = "cidr"   // a network
	KindDevice = "device" // a device id
	KindPrefix = "prefix" // a number block: the first 7 digits
)

// ListEntry is one allow or block entry. Value is what matches (for a phone, the keyed hash);
// Shown is what people see (for a phone, the masked number).
type ListEntry struct {
	ID     string
	Action string // allow or block
	Kind   string
	Value  string
	Shown  string
	Who    string
	At     time.Time
	Why    string
	File   bool // from the lists file: changed there, not in the console
}

// Lists stores the allow/block lists; a change takes effect on every node without a restart.
type Lists interface {
	// Entries returns every entry. The slice may be shared between calls: do not change it.
	Entries(ctx context.Context) ([]ListEntry, error)
	Add(ctx context.Context, e ListEntry) error
	Remove(ctx context.Context, id, who string) error
	// HashPhone is the keyed hash of a normalized number, as stored.
	HashPhone(phone string) string
}

// Filter is the time range and app of the overview.
type Filter struct {
	App      string // "" = every app
	From, To time.Time
}

// HourScores is the score mix of one hour.
type HourScores struct {
	Hour                         time.Time
	S0, S300, S600, S900, Events int64
}

// TagHour is how many events one tag was given in one hour.
type TagHour struct {
	Hour   time.Time
	Tag    string
	Events int64
}

// RuleHits is one rule's hits over the range, in one mode (enforce, shadow, tag, allow).
type RuleHits struct {
	Rule, Tag, Mode string
	Events          int64
}

// Overview is what the overview page draws.
type Overview struct {
	Scores []HourScores
	Tags   []TagHour
	Rules  []RuleHits
}

// Lookup names what to investigate: one of phone (normalized), IP or device.
type Lookup struct {
	Kind  string // phone, ip or device
	Value string // for a phone: the keyed hash
	// App, when set, is the app whose own windows (app_ip_*, app_prefix_*) the live features add,
	// judging the rules that read them; the history is every app's all the same.
	App string
}

// Attempt is one verification and its verdict.
type Attempt struct {
	TS           time.Time
	AppID        string
	EventID      string
	DecisionID   string // the /v1/risk/check decision the event reported, if any
	Phone        string // masked
	IP           string
	Device       string
	Outcome      string
	ErrorCode    string
	Score        int
	Tags         []string
	RulesVersion string
}

// Decision is one /v1/risk/check verdict from the decision log.
type Decision struct {
	TS           time.Time
	AppID        string
	DecisionID   string
	Phone        string // masked
	IP           string
	Device       string
	Score        int
	Tags         []string
	Hits         []string // every rule that matched, shadow and tag rules too, with its reason as served: "rule (mode): reason"
	RulesVersion string
	Node         string
}

// Activity is a key's recent attempts and decisions, newest first.
type Activity struct {
	Attempts  []Attempt
	Decisions []Decision
}

// MaxApps is the most apps History.Apps lists (the overview's suggestions): with more, it lists
// the first MaxApps in order.
const MaxApps = 1000

// History answers from ClickHouse's rollups and tables.
type History interface {
	// Apps lists the apps with scored events in the last 30 days, sorted, at most MaxApps.
	Apps(ctx context.Context) ([]string, error)
	Overview(ctx context.Context, f Filter) (Overview, error)
	Activity(ctx context.Context, l Lookup, limit int) (Activity, error)
}

// Feature is one live feature value.
type Feature struct {
	Name  string
	Value string
}

// Explainer shows a key's live features from this node's feature state. For a phone, Value is
// the normalized number itself (the state is keyed by it), which the console holds only for the
// request that asked.
type Explainer interface {
	Explain(ctx context.Context, l Lookup) ([]Feature, error)
}

// Labels records what an admin found an event or a decision to be: fraud or legit. Target is
// "event" or "decision"; id is the event's or the decision's id.
type Labels interface {
	Mark(ctx context.Context, appID, target, id, label, who string) error
}

// Deps are the console's parts. Any may be nil: its pages then say it is not available.
type Deps struct {
	Rules    RulePacks
	Backtest Backtester
	Lists    Lists
	History  History
	Explain  Explainer
	Labels   Labels
	Metrics  prometheus.Gatherer
	Admins   map[string]string // admin name → secret (api.admin_keys)
	Now      func() time.Time
	MaxJobs  int // backtests kept (running or finished); default 8
	MaxHours int // longest backtest period in hours; default 168
	// Approvals is how many admins a promotion takes: 0 or 1 promotes at once; 2 makes it a
	// request that another admin approves (or anyone withdraws).
	Approvals int
	// CacheFor keeps an overview's history for this long (default 30 s; negative: no cache): a
	// team reloading the page does not rerun the rollup queries each time.
	CacheFor time.Duration
	// State is where drafts, promotion requests and backtest runs are kept for every node; nil:
	// in this node's memory (NewMemoryState).
	State State
	// Node names this node in the state it writes (a backtest "running on NODE"); default: the
	// host name.
	Node string
	// AppKey reports whether a name and secret are an app's right credentials (api.keys:
	// api.Server.AppKey); nil: none are. Such a login is answered that the console takes an
	// admin's, and is no failed login.
	AppKey func(name, secret string) bool
	// ClientAddr names the client failed logins are counted against (api.Server.ClientAddr: the
	// client a trusted proxy names, an IPv6 /64); default: the TCP peer's address.
	ClientAddr func(*http.Request) string
}
