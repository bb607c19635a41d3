package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/geo"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// ---- overview ------------------------------------------------------------------------------

var ranges = []struct {
	Name string
	D    time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

type overviewData struct {
	Ranges  []string
	Apps    []string
	AppsErr string
	// AppUnlisted: the app filter is none of Apps (no scored events in 30 days) — a typo, or a
	// space the filter keeps (app ids are taken as sent). Never said of a list cut at MaxApps,
	// which the app may be past.
	AppUnlisted bool
	AppsCut     bool // Apps holds MaxApps: there may be more
	Overview    Overview
	OverviewErr string
	Total       int64
	ScoreChart  chartData
	TagChart    chartData
	TopTags     []tagTotal
	Metrics     []metricRow
	MetricsErr  string
	From, To    time.Time
	Took        time.Duration
}

type tagTotal struct {
	Tag    string
	Events int64
}

// chartData is what static/console.js hands uPlot: x (unix seconds) and one series per name.
type chartData struct {
	X      []int64   `json:"x"`
	Names  []string  `json:"names"`
	Series [][]int64 `json:"series"`
}

type metricRow struct {
	Name   string
	Labels string
	Value  float64
}

// appProblem says why app ("" = every app) is no app id, as the API would refuse it in a check
// or an event (schemas.CheckID: at most 64 bytes, no control character, not blank, no phone
// number), or returns "". A number is refused without being shown: no app id holds one, and it
// would only go into the history's queries.
func appProblem(app string) string {
	if !utf8.ValidString(app) {
		return "is not valid UTF-8 (no app id is)"
	}
	if schemas.ContainsPhone(app) {
		return "looks like a phone number, which no app id holds"
	}
	if err := schemas.CheckID("app_id", app, schemas.MaxAppIDLen); err != nil {
		if fe, ok := schemas.AsFieldError(err); ok {
			return fe.Reason
		}
		return "is no app id"
	}
	return ""
}

// parseFilter reads range/from/to/app, with an error per field.
func (s *Server) parseFilter(q url.Values, errs map[string]string) Filter {
	now := s.d.Now().UTC()
	// The app as sent, checked as the API checks an app_id: any id an app key can score and
	// publish under (a space, a slash, Chinese characters) is one the console filters by, and
	// " a1" is not "a1" (trimmed, it showed another app's figures under its name).
	f := Filter{To: now.Truncate(time.Hour).Add(time.Hour), App: q.Get("app")}
	if reason := appProblem(f.App); reason != "" {
		errs["app"] = "app: " + reason
		f.App = ""
	}
	rng := q.Get("range")
	if rng == "" && q.Get("from") == "" {
		rng = "24h"
	}
	if rng != "" && rng != "custom" {
		for _, r := range ranges {
			if r.Name == rng {
				f.From = f.To.Add(-r.D)
				return f
			}
		}
		errs["range"] = "range: one of 1h, 6h, 24h, 7d, 30d or custom"
		f.From = f.To.Add(-24 * time.Hour)
		return f
	}
	from, err1 := time.Parse("2006-01-02T15:04", q.Get("from"))
	to, err2 := time.Parse("2006-01-02T15:04", q.Get("to"))
	switch {
	case err1 != nil:
		errs["from"] = "from: a date and time like 2026-12-05T08:00 (UTC)"
	case err2 != nil:
		errs["to"] = "to: a date and time like 2026-12-05T09:00 (UTC)"
	case !to.After(from):
		errs["to"] = "to: must be after from"
	case to.Sub(from) > 90*24*time.Hour:
		errs["to"] = "to: at most 90 days after from"
	default:
		f.From, f.To = from.UTC(), to.UTC()
		return f
	}
	f.From = f.To.Add(-24 * time.Hour)
	return f
}

// formTime is a from or to of the overview as its form shows it again: whatever was sent, with
// any phone number masked (a number pasted into the field is never echoed back), and nothing when
// it is longer than any date and time (a megabyte of it is not shown either).
func formTime(v string) string {
	if len(v) > 32 {
		return ""
	}
	return schemas.MaskPhones(v)
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, ss *session) {
	start := time.Now()
	ctx, cancel := pageCtx(r)
	defer cancel()
	q := r.URL.Query()
	p := page{Title: "Overview", Errs: map[string]string{}, Form: map[string]string{
		"range": q.Get("range"), "from": formTime(q.Get("from")), "to": formTime(q.Get("to")), "app": schemas.MaskPhones(q.Get("app"))}}
	f := s.parseFilter(q, p.Errs)
	if p.Form["range"] == "" && p.Form["from"] == "" {
		p.Form["range"] = "24h"
	}
	d := overviewData{From: f.From, To: f.To}
	for _, r := range ranges {
		d.Ranges = append(d.Ranges, r.Name)
	}
	if s.d.History == nil {
		d.AppsErr = notAvailable("history", ErrNotAvailable)
		d.OverviewErr = d.AppsErr
	} else {
		// The app list and the overview at once.
		done := make(chan struct{})
		go func() {
			defer close(done)
			apps, err := s.d.History.Apps(ctx)
			d.Apps, d.AppsErr = apps, notAvailable("apps", err)
		}()
		ov, err := s.overviewOf(ctx, f)
		d.Overview, d.OverviewErr = ov, notAvailable("history", err)
		<-done
		d.AppsCut = len(d.Apps) >= MaxApps
		d.AppUnlisted = f.App != "" && d.AppsErr == "" && !d.AppsCut && !slices.Contains(d.Apps, f.App)
	}
	d.ScoreChart, d.Total = scoreChart(d.Overview.Scores, f.From, f.To)
	d.TagChart, d.TopTags = tagChart(d.Overview.Tags, 8, f.From, f.To)
	d.Metrics, d.MetricsErr = s.metrics()
	d.Took = time.Since(start).Round(100 * time.Microsecond)
	p.Data = d
	s.render(w, r, http.StatusOK, "overview", ss, p)
}

// chartHours is the charts' x axis: every hour of [from, to) and any other hour in data, in
// order, with each hour's index. An hour without events is then a zero on the chart, not a line
// drawn across it, and a range with one hour of data still spans the range.
func chartHours(from, to time.Time, data []int64) ([]int64, map[int64]int) {
	set := map[int64]bool{}
	for h := from.Truncate(time.Hour); h.Before(to); h = h.Add(time.Hour) {
		set[h.Unix()] = true
	}
	for _, h := range data {
		set[h] = true
	}
	xs := slices.Sorted(maps.Keys(set))
	idx := make(map[int64]int, len(xs))
	for i, x := range xs {
		idx[x] = i
	}
	return xs, idx
}

func scoreChart(hs []HourScores, from, to time.Time) (chartData, int64) {
	hours := make([]int64, len(hs))
	for i, h := range hs {
		hours[i] = h.Hour.Unix()
	}
	c := chartData{Names: []string{"0 pass", "300 observe", "600 step up", "900 block"}, Series: make([][]int64, 4)}
	if len(hs) == 0 {
		return c, 0 // the page says "No data in this range."
	}
	var idx map[int64]int
	c.X, idx = chartHours(from, to, hours)
	for i := range c.Series {
		c.Series[i] = make([]int64, len(c.X))
	}
	var total int64
	for _, h := range hs {
		i := idx[h.Hour.Unix()]
		c.Series[0][i] += h.S0
		c.Series[1][i] += h.S300
		c.Series[2][i] += h.S600
		c.Series[3][i] += h.S900
		total += h.Events
	}
	return c, total
}

func tagChart(th []TagHour, top int, from, to time.Time) (chartData, []tagTotal) {
	totals := map[string]int64{}
	hours := make([]int64, len(th))
	for i, t := range th {
		totals[t.Tag] += t.Events
		hours[i] = t.Hour.Unix()
	}
	var tt []tagTotal
	for tag, n := range totals {
		tt = append(tt, tagTotal{tag, n})
	}
	slices.SortFunc(tt, func(a, b tagTotal) int { return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(a.Tag, b.Tag)) })
	all := tt
	if len(tt) > top {
		tt = tt[:top]
	}
	c := chartData{}
	if len(tt) == 0 {
		return c, all // the page says "No data in this range."
	}
	var idx map[int64]int
	c.X, idx = chartHours(from, to, hours)
	col := map[string]int{}
	for i, t := range tt {
		c.Names = append(c.Names, t.Tag)
		c.Series = append(c.Series, make([]int64, len(c.X)))
		col[t.Tag] = i
	}
	for _, t := range th {
		if i, ok := col[t.Tag]; ok {
			c.Series[i][idx[t.Hour.Unix()]] += t.Events
		}
	}
	return c, all
}

// nodeMetrics are the node's own figures the overview shows next to the history.
var nodeMetrics = map[string]bool{
	"riskflow_dead_lettered_total":       true,
	"riskflow_consumer_lag_messages":     true,
	"riskflow_replica_lag_messages":      true,
	"riskflow_replica_staleness_seconds": true,
	"riskflow_scored_total":              true,
	"riskflow_api_scores_total":          true,
	"riskflow_breaker_state":             true,
	"riskflow_loop_stalled_seconds":      true,
}

func (s *Server) metrics() ([]metricRow, string) {
	if s.d.Metrics == nil {
		return nil, notAvailable("node metrics", ErrNotAvailable)
	}
	mfs, err := s.d.Metrics.Gather()
	if err != nil {
		return nil, notAvailable("node metrics", err)
	}
	var rows []metricRow
	for _, mf := range mfs {
		if !nodeMetrics[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			rows = append(rows, metricRow{Name: mf.GetName(), Labels: strings.Join(ls, " "), Value: metricValue(m)})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].Name < rows[j].Name || rows[i].Name == rows[j].Name && rows[i].Labels < rows[j].Labels
	})
	return rows, ""
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// ---- rules ---------------------------------------------------------------------------------

type rulesData struct {
	Pending     []*pendingPromotion
	PendingErr  string
	Approvals   int
	Live        PackInfo
	LiveErr     string
	Versions    []Version
	VersionsErr string
	// Loads is the audit trail (LoadHistory), at most maxLoadsShown of it; HasLoads when kept.
	Loads     []Version
	LoadsErr  string
	HasLoads  bool
	MoreLoads bool
}

// maxLoadsShown bounds the audit trail on the rules page.
const maxLoadsShown = 50

func (s *Server) rulesPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	p := page{Title: "Rules", Message: s.noticeOf(r, ss)}
	d := rulesData{Approvals: s.d.Approvals}
	// The requests, the versions and the load history are read at once: each may wait for a
	// ClickHouse that does not answer, and one after the other they held the page for the sum.
	var wg sync.WaitGroup
	wg.Go(func() {
		pend, err := s.pendingList(ctx)
		d.Pending = pend
		if err != nil {
			d.PendingErr = err.Error() // pendingList says "promotion requests: …"
		}
	})
	if s.d.Rules == nil {
		d.LiveErr = notAvailable("rule packs", ErrNotAvailable)
	} else {
		live, err := s.d.Rules.Live(ctx)
		d.Live, d.LiveErr = live, notAvailable("live pack", err)
		wg.Go(func() {
			vs, err := s.d.Rules.Versions(ctx)
			d.Versions, d.VersionsErr = vs, notAvailable("versions", err)
		})
		if lh, ok := s.d.Rules.(LoadHistory); ok {
			d.HasLoads = true
			wg.Go(func() {
				loads, err := lh.Loads(ctx)
				if len(loads) > maxLoadsShown {
					loads, d.MoreLoads = loads[:maxLoadsShown], true
				}
				d.Loads, d.LoadsErr = loads, notAvailable("history", err)
			})
		}
	}
	wg.Wait()
	p.Data = d
	s.render(w, r, http.StatusOK, "rules", ss, p)
}

type versionData struct {
	V, Against *Version
	Diff       []diffLine
	Versions   []Version
}

func (s *Server) versionPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	if s.d.Rules == nil {
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Version", Nav: "rules", Problem: notAvailable("rule packs", ErrNotAvailable)})
		return
	}
	vs, err := s.d.Rules.Versions(ctx)
	if err != nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Version", Nav: "rules", Problem: notAvailable("versions", err)})
		return
	}
	want, against := r.PathValue("version"), r.URL.Query().Get("against")
	d := versionData{Versions: vs}
	for i := range vs {
		if vs[i].Version == want {
			d.V = &vs[i]
			if against == "" && i+1 < len(vs) {
				d.Against = &vs[i+1] // the version loaded before it
			}
		}
		if against != "" && vs[i].Version == against {
			d.Against = &vs[i]
		}
	}
	if d.V == nil {
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Version", Nav: "rules", Problem: "version: no recorded version " + schemas.ShowName(want, 64)})
		return
	}
	// The list may leave the texts out: read the two versions compared.
	v, err := s.d.Rules.Version(ctx, d.V.Version)
	if err != nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Version", Nav: "rules", Problem: notAvailable("version "+want, err)})
		return
	}
	d.V = &v
	old := ""
	if d.Against != nil {
		a, err := s.d.Rules.Version(ctx, d.Against.Version)
		if err != nil {
			s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Version", Nav: "rules", Problem: notAvailable("version "+d.Against.Version, err)})
			return
		}
		d.Against = &a
		old = a.Content
	}
	d.Diff = lineDiff(old, d.V.Content)
	s.render(w, r, http.StatusOK, "version", ss, page{Title: "Version " + want, Nav: "rules", Data: d})
}

type draftData struct {
	Draft     string
	Lines     []draftLine
	Lint      []LintError
	Linted    bool
	Tests     []TestResult
	TestsRun  bool
	TestsErr  string
	Passed    int
	Live      PackInfo
	MaxHours  int
	Backtests []*jobView
	// BacktestsErr says why the runs of other nodes are missing.
	BacktestsErr string
	Shared       bool // drafts are kept for every node, not this one only
	// Base is the live version the draft was edited from, which the page carries to a promotion:
	// the live one when the draft was started, not whatever is live when the page is shown.
	Base string
	// Rev is the revision of the saved draft the page's editor holds (draftRev), which the page
	// sends back: a save from a page shown before another save of the draft is refused.
	Rev string
	// Conflict is the saved draft a refused save would have replaced.
	Conflict *draftConflict
}

// noDraft is the revision of "no saved draft": the editor holds the live pack.
const noDraft = "none"

// draftRev is the revision of a saved draft: a hash of its text (the same text saved twice is
// the same revision, and replacing it loses nothing).
func draftRev(body []byte) string { return "d" + draftVersion(body) }

// draftConflict is a saved draft that changed after the page sending a draft was shown (another
// tab, another window, another node): saving over it would lose that change unseen.
type draftConflict struct {
	At   time.Time
	Node string
	Diff []diffLine // from the saved draft to the page's
}

// savedDraft reads who's saved draft and its revision (noDraft when there is none).
func (s *Server) savedDraft(ctx context.Context, who string) (Item, string, error) {
	it, ok, err := s.d.State.Get(ctx, ItemDraft, who)
	if err != nil {
		return Item{}, "", fmt.Errorf("drafts: %w", err)
	}
	if !ok {
		return Item{}, noDraft, nil
	}
	return it, draftRev(it.Body), nil
}

// draftConflictOf says whether writing posted over who's saved draft would lose a change: the
// page was shown with revision rev ("" from a form that carries none: it expects no saved draft),
// the saved draft is another revision now, and its text is not the posted one. It returns the
// revision saved now. Callers hold s.draftMu from this check to their write.
func (s *Server) draftConflictOf(ctx context.Context, who, rev string, posted []byte) (*draftConflict, string, error) {
	it, cur, err := s.savedDraft(ctx, who)
	if err != nil {
		return nil, "", err
	}
	if rev == "" {
		rev = noDraft
	}
	if cur == noDraft || cur == rev || string(it.Body) == string(posted) {
		return nil, cur, nil
	}
	return &draftConflict{At: it.At, Node: it.Node, Diff: lineDiff(string(it.Body), string(posted))}, cur, nil
}

// conflictProblem is what the page says of a conflict; what names what was not done.
func conflictProblem(what string, c *draftConflict) string {
	where := ""
	if c.Node != "" {
		where = " through node " + c.Node
	}
	return fmt.Sprintf("%s: your saved draft was changed in another tab or window (saved at %s%s) after this page was opened, "+
		"and this page's draft would have replaced it. What differs is below: − lines are only in the saved draft, + lines only in this page's. "+
		"Carry what you need into the editor and save again (this page now counts that change as seen), or open the saved draft instead.",
		what, c.At.UTC().Format("2006-01-02 15:04:05Z"), where)
}

// renderConflict shows the page's draft, not saved, next to what differs from the saved one.
func (s *Server) renderConflict(ctx context.Context, w http.ResponseWriter, r *http.Request, ss *session, what string, c *draftConflict, d draftData) {
	d.Conflict = c
	d.Backtests, d.BacktestsErr = s.jobList(ctx)
	s.render(w, r, http.StatusConflict, "draft", ss, page{Title: "Draft", Nav: "rules", Errs: map[string]string{}, Problem: conflictProblem(what, c), Data: d})
}

type draftLine struct {
	N    int
	Text string
	Errs []LintError
}

// draftOf returns who's saved draft, nil when they have none.
func (s *Server) draftOf(ctx context.Context, who string) ([]byte, error) {
	it, ok, err := s.d.State.Get(ctx, ItemDraft, who)
	if err != nil {
		return nil, fmt.Errorf("drafts: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return it.Body, nil
}

// draftBaseOf returns the live version who's saved draft was edited from, "" when not known
// (no draft, or one saved by an earlier build).
func (s *Server) draftBaseOf(ctx context.Context, who string) string {
	it, ok, err := s.d.State.Get(ctx, ItemDraftBase, who)
	if err != nil || !ok {
		return ""
	}
	return string(it.Body)
}

// saveDraft keeps who's draft and, when known, the live version it was edited from.
func (s *Server) saveDraft(ctx context.Context, who string, draft []byte, base string) error {
	if err := s.put(ctx, Item{Kind: ItemDraft, ID: who, Admin: who, Body: draft}); err != nil {
		return err
	}
	if base == "" || !versionPattern.MatchString(base) {
		return nil
	}
	return s.put(ctx, Item{Kind: ItemDraftBase, ID: who, Admin: who, Body: []byte(base)})
}

// dropDraftIf drops who's saved draft if it is still revision rev (promoted, or discarded from a
// page that showed it): a draft saved from another tab meanwhile stays.
func (s *Server) dropDraftIf(ctx context.Context, who, rev string) (bool, error) {
	s.draftMu.Lock()
	defer s.draftMu.Unlock()
	_, cur, err := s.savedDraft(ctx, who)
	if err != nil {
		return false, err
	}
	if cur != noDraft && cur != rev {
		return false, nil
	}
	return true, s.dropDraft(ctx, who)
}

func (s *Server) dropDraft(ctx context.Context, who string) error {
	if err := s.put(ctx, Item{Kind: ItemDraft, ID: who, Admin: who, Deleted: true}); err != nil {
		return err
	}
	return s.put(ctx, Item{Kind: ItemDraftBase, ID: who, Admin: who, Deleted: true})
}

func (s *Server) draftPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	p := page{Title: "Draft", Nav: "rules", Errs: map[string]string{}, Message: s.noticeOf(r, ss)}
	d := draftData{MaxHours: s.d.MaxHours, Shared: s.shared}
	d.Backtests, d.BacktestsErr = s.jobList(ctx)
	if s.d.Rules == nil {
		p.Problem = notAvailable("rule packs", ErrNotAvailable)
		s.render(w, r, http.StatusOK, "draft", ss, p)
		return
	}
	live, err := s.d.Rules.Live(ctx)
	if err != nil {
		p.Problem = notAvailable("live pack", err)
	}
	d.Live, d.Base = live, live.Version
	it, rev, err := s.savedDraft(ctx, ss.who)
	if err != nil {
		p.Problem = notAvailable("your saved draft", err)
	}
	draft := it.Body
	d.Rev = rev
	if rev != draftRev(draft) {
		draft = nil // none saved (or unreadable): the live pack
	}
	if draft == nil {
		draft = live.Content
	} else if base := s.draftBaseOf(ctx, ss.who); base != "" {
		d.Base = base
	}
	if d.Base != "" && live.Version != "" && d.Base != live.Version {
		p.Problem = strings.TrimSpace(p.Problem + " " + fmt.Sprintf("Your draft was edited from version %s; the live pack is now %s (see History on the rules page). "+
			"Promoting the draft would replace that change: carry it into your draft, or discard the draft and start from the live pack.", d.Base, live.Version))
	}
	d.Draft = string(draft)
	p.Data = d
	s.render(w, r, http.StatusOK, "draft", ss, p)
}

const maxDraft = 1 << 20

func (s *Server) draftPost(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	p := page{Title: "Draft", Nav: "rules", Errs: map[string]string{}}
	d := draftData{MaxHours: s.d.MaxHours, Shared: s.shared}
	if s.d.Rules == nil {
		p.Problem = notAvailable("rule packs", ErrNotAvailable)
		s.render(w, r, http.StatusServiceUnavailable, "draft", ss, p)
		return
	}
	draft := strings.ReplaceAll(r.PostForm.Get("draft"), "\r\n", "\n")
	d.Draft = draft
	action := r.PostForm.Get("action")
	live, _ := s.d.Rules.Live(ctx)
	d.Live, d.Base = live, r.PostForm.Get("base")
	if !versionPattern.MatchString(d.Base) {
		d.Base = live.Version
	}
	status := http.StatusOK
	switch {
	case strings.TrimSpace(draft) == "":
		p.Errs["draft"] = "draft: empty; paste or edit a rule pack"
	case len(draft) > maxDraft:
		p.Errs["draft"] = fmt.Sprintf("draft: %d bytes, at most %d", len(draft), maxDraft)
	}
	if len(p.Errs) > 0 {
		p.Data = d
		s.render(w, r, http.StatusBadRequest, "draft", ss, p)
		return
	}
	// The page sends the revision of the saved draft it showed: when the draft was saved since
	// (another tab, another window), this page's draft would replace that change unseen. Nothing
	// is done then; the page shows both. On this node the check and the write are one step
	// (draftMu); two nodes both writing in the milliseconds between them is not caught.
	s.draftMu.Lock()
	conflict, rev, err := s.draftConflictOf(ctx, ss.who, r.PostForm.Get("rev"), []byte(draft))
	d.Rev = rev
	switch {
	case err != nil:
		// Unchecked, it is not written; the draft is on the page still: carry on with the action.
		p.Problem = "The draft is not saved: " + err.Error()
	case conflict != nil, action == "discard":
	case schemas.ContainsPhone(draft):
		// Drafts are kept in console_state (ClickHouse) as typed; lint shows where the number is.
		p.Problem = "The draft is not saved: it holds a phone number, which riskflow never keeps in plaintext (lint shows where)."
	default:
		if err := s.saveDraft(ctx, ss.who, []byte(draft), d.Base); err != nil {
			// The draft is on the page still: say it is not saved, and carry on with the action.
			p.Problem = "The draft is not saved: " + err.Error()
		} else {
			d.Rev = draftRev([]byte(draft))
		}
	}
	s.draftMu.Unlock()
	if conflict != nil {
		what := map[string]string{"promote": "Not promoted", "discard": "Not discarded"}[action]
		s.renderConflict(ctx, w, r, ss, cmp.Or(what, "Not saved"), conflict, d)
		return
	}
	// Every action lints first: a draft that does not compile cannot be tested or promoted.
	d.Lint, d.Linted = s.d.Rules.Lint([]byte(draft)), true
	d.Lines = annotate(draft, d.Lint)
	if len(d.Lint) > 0 {
		p.Errs["draft"] = fmt.Sprintf("draft: %d problem(s), shown at their line below", len(d.Lint))
		if action != "lint" && action != "save" {
			status = http.StatusBadRequest
		}
	}
	switch action {
	case "lint", "save":
		if len(d.Lint) == 0 {
			p.Message = "The draft compiles: no problems."
		}
	case "test":
		if len(d.Lint) > 0 {
			break
		}
		d.TestsRun = true
		res, err := s.d.Rules.Test(ctx, []byte(draft))
		d.Tests, d.TestsErr = res, notAvailable("tests", err)
		if errors.Is(err, schemas.ErrUnavailable) {
			// The node runs its tests for other requests (a few at a time): come back shortly.
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
		for _, t := range res {
			if len(t.Failures) == 0 {
				d.Passed++
			}
		}
		if err == nil && d.Passed == len(res) {
			p.Message = fmt.Sprintf("All %d tests passed.", len(res))
		} else if err == nil {
			// After what went before (the draft not saved), not instead of it.
			p.Problem = strings.TrimSpace(p.Problem + " " + fmt.Sprintf("%d of %d tests failed.", len(res)-d.Passed, len(res)))
		}
	case "promote":
		if len(d.Lint) > 0 {
			p.Problem = "Not promoted: fix the problems first."
			break
		}
		// The page carries the live version it showed (base): when another admin promoted since,
		// this draft — edited from the pack before theirs — would silently undo their change.
		// The page shown now carries the new live version, so promoting again is a choice. A
		// promotion request is refused alike: its approval would undo that change as well.
		if base := r.PostForm.Get("base"); base != "" && live.Version != "" && base != live.Version {
			if !versionPattern.MatchString(base) {
				base = "(none: base= is no version)" // not shown: it is whatever was sent
			}
			p.Problem = fmt.Sprintf("Not promoted: the live pack changed while you edited the draft: the page showed version %s, the live one is now %s "+
				"(see History on the rules page). Your draft would replace that change: compare it with the live pack, then promote again.", base, live.Version)
			status = http.StatusConflict
			// The page shown now carries the live version: promoting again is a choice.
			d.Base = live.Version
			break
		}
		if s.d.Approvals >= 2 {
			// The approval promotes through the pack's tests: a request that fails them now
			// would only be refused then, after another admin read it. Say so now, as a
			// promotion does.
			res, err := s.d.Rules.Test(ctx, []byte(draft))
			if errors.Is(err, ErrNotAvailable) {
				// No tests beside the pack (no tests.yaml): a promotion runs none either.
				res, err = nil, nil
			}
			d.TestsRun, d.Tests, d.TestsErr = true, res, notAvailable("tests", err)
			for _, t := range res {
				if len(t.Failures) == 0 {
					d.Passed++
				}
			}
			if err != nil || d.Passed < len(res) {
				status = http.StatusServiceUnavailable
				p.Problem = "Not requested: the tests could not be run: " + fmt.Sprint(err)
				if err == nil {
					status = http.StatusBadRequest
					p.Problem = fmt.Sprintf("Not requested: %d of %d tests fail (below); a promotion would be refused. Fix the draft or the pack's tests first.", len(res)-d.Passed, len(res))
				}
				break
			}
			pp, err := s.requestPromotion(ctx, []byte(draft), ss.who, live.Version, "")
			if err != nil {
				p.Problem = "Not requested: " + err.Error()
				status = http.StatusServiceUnavailable
				break
			}
			s.log.Info("console: promotion requested", "admin", ss.who, "version", pp.Version, "id", pp.ID)
			http.Redirect(w, r, "/console/rules?"+s.notice(ss, fmt.Sprintf("Promotion of version %s requested by %s: another admin approves it under Waiting for approval.", pp.Version, ss.who)), http.StatusSeeOther)
			return
		}
		info, err := s.d.Rules.Promote(ctx, []byte(draft), ss.who, r.PostForm.Get("base"))
		if err != nil {
			p.Problem = "Not promoted: " + err.Error()
			switch {
			case errors.Is(err, ErrInvalid):
				status = http.StatusBadRequest
			case errors.Is(err, ErrStale):
				status = http.StatusConflict
				if now, err := s.d.Rules.Live(ctx); err == nil {
					d.Base = now.Version // promoting again is a choice
				}
			default:
				status = http.StatusServiceUnavailable
			}
			break
		}
		if _, err := s.dropDraftIf(ctx, ss.who, d.Rev); err != nil {
			s.log.Warn("console: promoted, but the draft could not be dropped", "admin", ss.who, "err", err)
		}
		s.log.Info("console: rule pack promoted", "admin", ss.who, "version", info.Version)
		msg := fmt.Sprintf("Promoted version %s (%d rules) by %s.", info.Version, info.Rules, ss.who)
		if info.Note != "" {
			msg += " Note: " + info.Note
		}
		http.Redirect(w, r, "/console/rules?"+s.notice(ss, msg), http.StatusSeeOther)
		return
	case "discard":
		dropped, err := s.dropDraftIf(ctx, ss.who, d.Rev)
		if err == nil && !dropped {
			err = errors.New("your draft was saved again in another tab or window meanwhile; open it and discard it from there")
		}
		if err != nil {
			p.Problem = "Not discarded: " + err.Error()
			status = http.StatusServiceUnavailable
			break
		}
		http.Redirect(w, r, "/console/rules/draft?"+s.notice(ss, "Draft discarded: editing the live pack."), http.StatusSeeOther)
		return
	default:
		p.Errs["action"] = "action: one of lint, test, promote, discard"
		status = http.StatusBadRequest
	}
	d.Backtests, d.BacktestsErr = s.jobList(ctx)
	p.Data = d
	s.render(w, r, status, "draft", ss, p)
}

// annotate splits the draft into numbered lines with each problem under its line; problems
// without a line go on line 1.
func annotate(draft string, errs []LintError) []draftLine {
	lines := strings.Split(draft, "\n")
	out := make([]draftLine, len(lines))
	for i, l := range lines {
		out[i] = draftLine{N: i + 1, Text: l}
	}
	for _, e := range errs {
		i := max(e.Line, 1) - 1
		if i >= len(out) {
			i = len(out) - 1
		}
		out[i].Errs = append(out[i].Errs, e)
	}
	return out
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	v := r.PostForm.Get("version")
	if s.d.Rules == nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: notAvailable("rule packs", ErrNotAvailable)})
		return
	}
	if !versionPattern.MatchString(v) {
		s.render(w, r, http.StatusBadRequest, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: "version: 16 hex digits of a recorded version"})
		return
	}
	// The rules page carries the live version it showed (base): a rollback clicked on a page
	// shown before another admin's promotion would undo that promotion unseen. Checked here and
	// again as the pack is swapped in (Rollback's live): two admins rolling back at once both
	// passed this check and were both told their rollback was done.
	base := r.PostForm.Get("base")
	if base != "" && !versionPattern.MatchString(base) {
		// Not shown: it is whatever was sent.
		s.render(w, r, http.StatusBadRequest, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: "base: the live version the page showed, 16 hex digits"})
		return
	}
	if base != "" {
		if live, err := s.d.Rules.Live(ctx); err == nil && live.Version != "" && live.Version != base {
			s.rollbackStale(w, r, ss, v, base, live.Version)
			return
		}
	}
	if r.PostForm.Get("confirm") != "yes" {
		// One click on a version's row loaded it on every node: a rollback first shows what it
		// changes, and is done from that page.
		s.rollbackConfirm(w, r, ss, v, base)
		return
	}
	if s.d.Approvals >= 2 {
		// Two admins load a pack, a rollback's too: one admin alone (or one stolen session)
		// could otherwise bring back any recorded version — one with every rule in shadow.
		ver, err := s.d.Rules.Version(ctx, v)
		if err == nil {
			// A version this build no longer compiles is refused now, as the rollback itself
			// refuses it: a request for it was accepted and refused only when approved.
			if lint := s.d.Rules.Lint([]byte(ver.Content)); len(lint) > 0 {
				s.render(w, r, http.StatusBadRequest, "error", ss, page{Title: "Rollback", Nav: "rules",
					Problem: fmt.Sprintf("Rollback not requested: version %s no longer compiles: %s", v, lintText(lint))})
				return
			}
		}
		live, lerr := s.d.Rules.Live(ctx)
		if err == nil {
			err = lerr
		}
		var pp *pendingPromotion
		if err == nil {
			pp, err = s.requestPromotion(ctx, []byte(ver.Content), ss.who, live.Version, v)
		}
		if err != nil {
			s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: "Rollback not requested: " + err.Error()})
			return
		}
		s.log.Info("console: rollback requested", "admin", ss.who, "version", v, "id", pp.ID)
		http.Redirect(w, r, "/console/rules?"+s.notice(ss, fmt.Sprintf("Rollback to version %s requested by %s: another admin approves it under Waiting for approval.", v, ss.who)), http.StatusSeeOther)
		return
	}
	info, err := s.d.Rules.Rollback(ctx, v, ss.who, base)
	if errors.Is(err, ErrStale) {
		now := "another version"
		if live, lerr := s.d.Rules.Live(ctx); lerr == nil && live.Version != "" {
			now = live.Version
		}
		s.rollbackStale(w, r, ss, v, base, now)
		return
	}
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, ErrInvalid) {
			status = http.StatusBadRequest
		}
		s.render(w, r, status, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: "Not rolled back: " + err.Error()})
		return
	}
	s.log.Info("console: rule pack rolled back", "admin", ss.who, "version", info.Version)
	msg := fmt.Sprintf("Rolled back to version %s by %s.", info.Version, ss.who)
	if info.Note != "" {
		msg += " Note: " + info.Note
	}
	http.Redirect(w, r, "/console/rules?"+s.notice(ss, msg), http.StatusSeeOther)
}

// lintText is a pack's problems as one line each, the way rules.CompileError writes them
// ("line 3:41: rule r1: when: undeclared reference to 'x'"), at most 20 (and how many more).
func lintText(errs []LintError) string {
	const most = 20
	var b strings.Builder
	for i, e := range errs {
		if i == most {
			fmt.Fprintf(&b, "; and %d more", len(errs)-most)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Line > 0 {
			fmt.Fprintf(&b, "line %d:%d: ", e.Line, e.Column)
		}
		if e.Rule != "" {
			fmt.Fprintf(&b, "rule %s: ", e.Rule)
		}
		if e.Field != "" {
			b.WriteString(e.Field + ": ")
		}
		b.WriteString(e.Msg)
	}
	return b.String()
}

type rollbackData struct {
	V       Version
	Live    PackInfo
	Base    string // the live version the rules page showed, sent on with the confirmation
	Diff    []diffLine
	Request bool // two admins load a pack: confirming asks another admin to approve
}

// rollbackConfirm shows what a rollback to v would change (the live pack's text against v's) with
// the button that does it (confirm=yes, the same version and base).
func (s *Server) rollbackConfirm(w http.ResponseWriter, r *http.Request, ss *session, v, base string) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	ver, err := s.d.Rules.Version(ctx, v)
	if errors.Is(err, ErrInvalid) {
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: "version: no recorded version " + v})
		return
	}
	if err != nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: notAvailable("version "+v, err)})
		return
	}
	live, err := s.d.Rules.Live(ctx)
	if err != nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: notAvailable("the live pack", err)})
		return
	}
	if base == "" {
		base = live.Version
	}
	d := rollbackData{V: ver, Live: live, Base: base, Diff: lineDiff(string(live.Content), ver.Content), Request: s.d.Approvals >= 2}
	s.render(w, r, http.StatusOK, "rollback", ss, page{Title: "Roll back to " + v, Nav: "rules", Data: d})
}

// rollbackStale answers a rollback to v from a page that showed version base while now is live
// (another admin's promotion or rollback came first): 409, naming both, nothing done.
func (s *Server) rollbackStale(w http.ResponseWriter, r *http.Request, ss *session, v, base, now string) {
	s.render(w, r, http.StatusConflict, "error", ss, page{Title: "Rollback", Nav: "rules", Problem: fmt.Sprintf(
		"Not rolled back: the live pack changed since the page showed version %s: it is now %s (another admin's promotion or rollback came first; see History on the rules page). "+
			"Roll back again from the rules page if %s is still to replace it.", base, now, v)})
}

var versionPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// stateIDPattern is the id of a promotion request or a backtest run (random bytes, hex).
var stateIDPattern = regexp.MustCompile(`^[0-9a-f]{1,32}$`)

// entryIDPattern is a list entry's id (pipeline.ListEntryID).
var entryIDPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// ---- lists ---------------------------------------------------------------------------------

type listsData struct {
	Entries []ListEntry // this page's
	Err     string
	Kinds   []string
	// Total entries; this page shows the From-th to the To-th (1-based); First, Prev, Next and
	// Last link the other pages ("" where there is none): entries added in the console come after
	// the lists file's, on the last page.
	Total, From, To         int
	First, Prev, Next, Last string
}

// listsPerPage is how many entries a lists page shows: a bulk block list of thousands of
// addresses made the page megabytes long.
const listsPerPage = 200

// paginate cuts d's entries to the n-th page (1-based; a page past the last is the last).
func (d *listsData) paginate(es []ListEntry, n int) {
	d.Total = len(es)
	last := max(1, (len(es)+listsPerPage-1)/listsPerPage)
	n = min(max(n, 1), last)
	lo, hi := (n-1)*listsPerPage, min(n*listsPerPage, len(es))
	d.Entries, d.From, d.To = es[lo:hi], lo+1, hi
	if n > 1 {
		d.First, d.Prev = "/console/lists?page=1", "/console/lists?page="+strconv.Itoa(n-1)
	}
	if n < last {
		d.Next, d.Last = "/console/lists?page="+strconv.Itoa(n+1), "/console/lists?page="+strconv.Itoa(last)
	}
}

var listKinds = []string{KindPhone, KindIP, KindCIDR, KindDevice, KindPrefix}

func (s *Server) listsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	s.renderLists(w, r, ss, http.StatusOK, page{Title: "Lists", Errs: map[string]string{}, Form: map[string]string{"action": "block", "kind": "phone"}, Message: s.noticeOf(r, ss)})
}

func (s *Server) renderLists(w http.ResponseWriter, r *http.Request, ss *session, status int, p page) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	d := listsData{Kinds: listKinds}
	if s.d.Lists == nil {
		d.Err = notAvailable("lists", ErrNotAvailable)
	} else {
		es, err := s.d.Lists.Entries(ctx)
		d.Err = notAvailable("lists", err)
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		d.paginate(es, n)
	}
	p.Data = d
	s.render(w, r, status, "lists", ss, p)
}

// checkEntry validates a list entry from the form, with an error per field, and returns it in
// stored form (a phone hashed).
func (s *Server) checkEntry(f url.Values, errs map[string]string) ListEntry {
	e := ListEntry{Action: f.Get("action"), Kind: f.Get("kind"), Why: strings.TrimSpace(f.Get("why"))}
	v := strings.TrimSpace(f.Get("value"))
	if e.Action != "allow" && e.Action != "block" {
		errs["action"] = "action: allow or block"
	}
	switch e.Kind {
	case KindPhone:
		p, err := schemas.ReadWrittenPhone(v)
		if err != nil {
			errs["value"] = "value: " + err.Error()
			break
		}
		e.Value, e.Shown = s.d.Lists.HashPhone(p), schemas.MaskPhone(p)
	case KindIP:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			errs["value"] = "value: not an IPv4 or IPv6 address (for a network choose cidr)"
			break
		}
		e.Value = a.Unmap().String()
	case KindCIDR:
		if !strings.Contains(v, "/") {
			errs["value"] = "value: a network like 198.51.100.0/24 (for one address choose ip)"
			break
		}
		n, err := geo.ParseNetwork(v)
		if err != nil {
			errs["value"] = "value: " + err.Error()
			break
		}
		if min := minNetworkBits(n); n.Bits() < min {
			// One such entry applies to (nearly) every login on every node within a second: a
			// block scores them all 900, an allow lifts every block. The lists file takes any.
			errs["value"] = fmt.Sprintf("value: %s is as broad as a large part of the internet: the entry would apply to nearly every login on every node; "+
				"the console takes /%d or narrower (a broader network goes in the lists file, scoring.lists)", n, min)
			break
		}
		e.Value = n.String()
	case KindDevice:
		if v == "" || len(v) > 128 || strings.ContainsAny(v, " \t\r\n#") {
			errs["value"] = "value: a device id of 1–128 characters without spaces or #"
			break
		}
		if why := deviceProblem(v); why != "" {
			errs["value"] = "value: " + why
			break
		}
		e.Value = v
	case KindPrefix:
		if len(v) != 7 || strings.Trim(v, "0123456789") != "" || v[0] != '1' {
			errs["value"] = "value: a number block is the first 7 digits of a number, starting with 1 (e.g. 1700123)"
			break
		}
		e.Value = v
	default:
		errs["kind"] = "kind: one of phone, ip, cidr, device, prefix"
	}
	if e.Shown == "" {
		e.Shown = e.Value
	}
	switch {
	case e.Why == "":
		errs["why"] = "why: required — say why, for whoever reads this list next"
	// Characters, as the form's maxlength counts them: a note in Chinese is three bytes a character.
	case utf8.RuneCountInString(e.Why) > 200 || strings.ContainsAny(e.Why, "\r\n"):
		errs["why"] = "why: one line of at most 200 characters"
	case !utf8.ValidString(e.Why):
		errs["why"] = "why: is not valid UTF-8 text"
	case strings.ContainsFunc(e.Why, unicode.IsControl):
		// A NUL or an escape sequence would go to the lists topic and every node's page as sent.
		errs["why"] = "why: contains a control character"
	case schemas.ContainsPhone(e.Why):
		// The note goes to the lists topic and every node as typed: riskflow never keeps a number
		// in plaintext.
		errs["why"] = "why: holds a phone number; say why without it (block the number itself with kind phone: it is stored hashed)"
	}
	return e
}

// minNetworkBits is the broadest network the console lists (IPv4 /8, IPv6 /16), as ParseNetwork
// returns it (an IPv6 network embedding IPv4 addresses is the IPv4 one).
func minNetworkBits(n netip.Prefix) int {
	if n.Addr().Is4() {
		return 8
	}
	return 16
}

// deviceProblem says why v cannot be a device id of an event (events carrying it are refused, so
// a list entry or a lookup of it would never match anything), or "". Its answers never show v.
func deviceProblem(v string) string {
	switch {
	case !utf8.ValidString(v):
		return "is not valid UTF-8 text"
	case strings.ContainsFunc(v, unicode.IsControl):
		return "contains a control character"
	case schemas.ContainsPhone(v):
		// Events with such a device id are refused, and an entry would keep the number as typed.
		return "looks like it contains a mobile phone number; for a number choose kind phone (it is stored hashed)"
	}
	return ""
}

func (s *Server) listsAdd(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	f := r.PostForm
	p := page{Title: "Lists", Errs: map[string]string{}, Form: map[string]string{
		"action": f.Get("action"), "kind": f.Get("kind"), "why": schemas.MaskPhones(f.Get("why"))}}
	if f.Get("kind") != KindPhone {
		p.Form["value"] = schemas.MaskPhones(f.Get("value")) // a number is never echoed back
	}
	if s.d.Lists == nil {
		p.Problem = notAvailable("lists", ErrNotAvailable)
		s.renderLists(w, r, ss, http.StatusServiceUnavailable, p)
		return
	}
	e := s.checkEntry(f, p.Errs)
	if len(p.Errs) > 0 {
		s.renderLists(w, r, ss, http.StatusBadRequest, p)
		return
	}
	e.Who, e.At = ss.who, s.d.Now().UTC()
	if err := s.d.Lists.Add(ctx, e); err != nil {
		if errors.Is(err, ErrInvalid) {
			p.Errs["value"] = "value: " + err.Error()
			s.renderLists(w, r, ss, http.StatusBadRequest, p)
			return
		}
		p.Problem = "Not added: " + err.Error()
		s.renderLists(w, r, ss, http.StatusServiceUnavailable, p)
		return
	}
	s.log.Info("console: list entry added", "admin", ss.who, "action", e.Action, "kind", e.Kind, "shown", e.Shown)
	http.Redirect(w, r, "/console/lists?"+s.notice(ss, fmt.Sprintf("Added: %s %s %s.", e.Action, e.Kind, e.Shown)), http.StatusSeeOther)
}

func (s *Server) listsRemove(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	id := r.PostForm.Get("id")
	p := page{Title: "Lists", Errs: map[string]string{}, Form: map[string]string{"action": "block", "kind": "phone"}}
	if s.d.Lists == nil {
		p.Problem = notAvailable("lists", ErrNotAvailable)
		s.renderLists(w, r, ss, http.StatusServiceUnavailable, p)
		return
	}
	if id == "" {
		p.Problem = "id: which entry to remove"
		s.renderLists(w, r, ss, http.StatusBadRequest, p)
		return
	}
	if !entryIDPattern.MatchString(id) {
		// Not shown: it is whatever was posted.
		p.Problem = "id: not the id of a list entry (12 hex digits)"
		s.renderLists(w, r, ss, http.StatusBadRequest, p)
		return
	}
	if err := s.d.Lists.Remove(ctx, id, ss.who); err != nil {
		p.Problem = "Not removed: " + err.Error()
		s.renderLists(w, r, ss, http.StatusBadRequest, p)
		return
	}
	s.log.Info("console: list entry removed", "admin", ss.who, "id", id)
	http.Redirect(w, r, "/console/lists?"+s.notice(ss, "Removed entry "+id+"."), http.StatusSeeOther)
}

// ---- investigate ---------------------------------------------------------------------------

type investigateData struct {
	Looked      bool
	Shown       string
	Features    []Feature
	FeaturesErr string
	Attempts    []Attempt
	Decisions   []Decision
	AttemptsErr string
	LabelsErr   string
	Back        string      // this page, for the label forms to come back to
	Listed      []ListEntry // list entries that match the key (for an IP, networks holding it too)
	ListedErr   string
	// MoreAttempts and MoreDecisions: the list shows the newest activityShown of more; Rest is
	// the command that lists them all.
	MoreAttempts, MoreDecisions bool
	Shows                       int
	Rest                        string
}

// activityShown is how many attempts, and how many decisions, a lookup shows.
const activityShown = 100

// listedFor returns the list entries that match l: the same phone hash or device, or for an IP the
// address itself (an IPv6 address listed: any of its /64, as the scorer matches it) and every
// network holding it.
func listedFor(es []ListEntry, l Lookup) []ListEntry {
	var out []ListEntry
	ip, ipErr := netip.ParseAddr(l.Value)
	for _, e := range es {
		switch {
		case l.Kind == KindPhone && e.Kind == KindPhone && e.Value == l.Value,
			l.Kind == KindDevice && e.Kind == KindDevice && e.Value == l.Value,
			l.Kind == KindIP && e.Kind == KindIP && e.Value == l.Value:
			out = append(out, e)
		case l.Kind == KindIP && e.Kind == KindIP && ipErr == nil && ip.Is6() && !ip.Is4In6():
			if a, err := netip.ParseAddr(e.Value); err == nil && a.Is6() && samePrefix64(a, ip) {
				out = append(out, e)
			}
		case l.Kind == KindIP && e.Kind == KindCIDR && ipErr == nil:
			if n, err := netip.ParsePrefix(e.Value); err == nil && n.Contains(ip.Unmap()) {
				out = append(out, e)
			}
		}
	}
	return out
}

// samePrefix64 reports whether a and b, IPv6 addresses, are in one /64.
func samePrefix64(a, b netip.Addr) bool {
	pa, _ := a.Prefix(64)
	pb, _ := b.Prefix(64)
	return pa == pb
}

// investigate looks a key up from a link (GET: ip, device, phone_hash) — a number typed in the
// form comes by POST (investigatePost), so that it is in no URL.
func (s *Server) investigate(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	kind, v := q.Get("kind"), strings.TrimSpace(q.Get("value"))
	if kind == KindPhone && v != "" {
		// A number in a URL (history, proxies' logs) is sent on to its hash.
		if ph, err := schemas.ReadWrittenPhone(v); err == nil && s.d.Lists != nil {
			to := "/console/investigate?kind=phone_hash&value=" + s.d.Lists.HashPhone(ph)
			if app := q.Get("app"); app != "" {
				to += "&app=" + url.QueryEscape(app)
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
	}
	s.investigateKey(w, r, ss, kind, v, q.Get("app"), s.noticeOf(r, ss))
}

func (s *Server) investigatePost(w http.ResponseWriter, r *http.Request, ss *session) {
	s.investigateKey(w, r, ss, r.PostForm.Get("kind"), strings.TrimSpace(r.PostForm.Get("value")), r.PostForm.Get("app"), "")
}

// investigateKey looks up the key kind v; app ("" none) adds that app's own windows to the live
// features, so that the rules reading them are judged as they are for the app's checks.
func (s *Server) investigateKey(w http.ResponseWriter, r *http.Request, ss *session, kind, v, app, msg string) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	p := page{Title: "Investigate", Errs: map[string]string{}, Form: map[string]string{"kind": cmp.Or(kind, "phone"), "app": schemas.MaskPhones(app)}, Message: msg}
	if kind != KindPhone {
		p.Form["value"] = schemas.MaskPhones(v) // a number is never echoed back
	}
	if reason := appProblem(app); reason != "" {
		p.Errs["app"] = "app: " + reason
		app = ""
	}
	var d investigateData
	if s.d.Labels == nil {
		d.LabelsErr = notAvailable("labels", ErrNotAvailable)
	}
	if v == "" && kind == "" {
		p.Data = d
		s.render(w, r, http.StatusOK, "investigate", ss, p)
		return
	}
	// hl is the key as the history and the lists hold it; el as the live state does (for a
	// number: the number itself, known only when it was typed in).
	hl := Lookup{Kind: kind}
	var el *Lookup
	switch kind {
	case KindPhone:
		ph, err := schemas.ReadWrittenPhone(v)
		if err != nil {
			p.Errs["value"] = "value: " + err.Error()
			break
		}
		if s.d.Lists == nil {
			p.Errs["value"] = "value: numbers cannot be looked up on this node (no phone hasher)"
			break
		}
		hl.Value, d.Shown = s.d.Lists.HashPhone(ph), schemas.MaskPhone(ph)
		el = &Lookup{Kind: KindPhone, Value: ph}
	case "phone_hash":
		if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
			p.Errs["value"] = "value: a phone hash is 64 lower-case hex digits"
			break
		}
		p.Form["kind"] = KindPhone
		hl.Kind, hl.Value, d.Shown = KindPhone, v, "number hashed "+v[:12]+"…"
	case KindIP:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			// A zone (fe80::1%eth0) is no part of any event's address, and free text.
			p.Errs["value"] = "value: not an IPv4 or IPv6 address"
			break
		}
		hl.Value, d.Shown = a.Unmap().String(), a.Unmap().String()
		el = &hl
	case KindDevice:
		if v == "" || len(v) > 128 {
			p.Errs["value"] = "value: a device id of 1–128 characters"
			break
		}
		if why := deviceProblem(v); why != "" {
			// Looked up, it would go into the label forms' URLs and the history's queries.
			p.Errs["value"] = "value: " + why
			break
		}
		hl.Value, d.Shown = v, v
		el = &hl
	default:
		p.Errs["kind"] = "kind: phone, ip or device"
	}
	status := http.StatusOK
	if len(p.Errs) > 0 {
		status = http.StatusBadRequest
	} else {
		d.Looked = true
		if hl.Kind == KindPhone {
			d.Back = "/console/investigate?kind=phone_hash&value=" + hl.Value
		} else {
			d.Back = "/console/investigate?kind=" + url.QueryEscape(hl.Kind) + "&value=" + url.QueryEscape(hl.Value)
		}
		if app != "" {
			d.Back += "&app=" + url.QueryEscape(app)
			if el != nil {
				withApp := *el
				withApp.App = app
				el = &withApp
			}
		}
		if s.d.Lists != nil {
			es, err := s.d.Lists.Entries(ctx)
			d.Listed, d.ListedErr = listedFor(es, hl), notAvailable("lists", err)
		}
		switch {
		case s.d.Explain == nil:
			d.FeaturesErr = notAvailable("live features", ErrNotAvailable)
		case el == nil:
			d.FeaturesErr = "live features: the live state knows a number by the number itself — type it in the form to see them"
		default:
			fs, err := s.d.Explain.Explain(ctx, *el)
			d.Features, d.FeaturesErr = fs, notAvailable("live features", err)
		}
		if s.d.History == nil {
			d.AttemptsErr = notAvailable("history", ErrNotAvailable)
		} else {
			// One more than shown: whether the lists are cut (a farm's address has thousands).
			act, err := s.d.History.Activity(ctx, hl, activityShown+1)
			d.Attempts, d.Decisions, d.AttemptsErr = act.Attempts, act.Decisions, notAvailable("recent attempts and decisions", err)
			if len(d.Attempts) > activityShown {
				d.Attempts, d.MoreAttempts = d.Attempts[:activityShown], true
			}
			if len(d.Decisions) > activityShown {
				d.Decisions, d.MoreDecisions = d.Decisions[:activityShown], true
			}
			d.Shows = activityShown
			switch hl.Kind {
			case KindPhone:
				d.Rest = "riskflow lookup --phone NUMBER --since 7d --limit 1000" // the number is never shown
			case KindIP:
				d.Rest = "riskflow lookup --ip " + hl.Value + " --since 7d --limit 1000"
			default:
				d.Rest = "riskflow lookup --device " + strconv.Quote(hl.Value) + " --since 7d --limit 1000"
			}
		}
	}
	p.Data = d
	s.render(w, r, status, "investigate", ss, p)
}

func (s *Server) label(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	f := r.PostForm
	label, app, target, id, back := f.Get("label"), f.Get("app_id"), f.Get("target"), f.Get("id"), f.Get("back")
	back = labelBack(back)
	sep := "&"
	if !strings.Contains(back, "?") {
		sep = "?"
	}
	var msg string
	switch {
	case label != "fraud" && label != "legit":
		msg = "label: fraud or legit"
	case target != "event" && target != "decision":
		msg = "target: event or decision"
	case app == "" || id == "" || len(app) > 64 || len(id) > 64:
		msg = "id: the app_id and id of an attempt or a decision"
	case s.d.Labels == nil:
		msg = "Not marked: " + notAvailable("labels", ErrNotAvailable)
	default:
		if err := s.d.Labels.Mark(ctx, app, target, id, label, ss.who); err != nil {
			msg = "Not marked: " + err.Error()
		} else {
			s.log.Info("console: labelled", "admin", ss.who, "app", app, "target", target, "id", id, "label", label)
			msg = fmt.Sprintf("%s %s marked %s by %s.", strings.ToUpper(target[:1])+target[1:], id, label, ss.who)
		}
	}
	http.Redirect(w, r, back+sep+s.notice(ss, msg), http.StatusSeeOther)
}

// labelBack is the lookup page a label form comes back to: back (the page's Back) when it is the
// investigate page, with its kind and value only, and without them when they hold a phone number
// (a forged form, a link to a number's lookup): the redirect goes into the browser's history and
// any proxy's log.
func labelBack(back string) string {
	const page = "/console/investigate"
	if p, ok := consolePath(back); !ok || p != page {
		return page
	}
	u, err := url.Parse(back)
	if err != nil || holdsNumber(u.RawQuery, url.QueryUnescape) {
		return page
	}
	q := u.Query()
	kind, value := q.Get("kind"), q.Get("value")
	if kind == "" || value == "" || schemas.ContainsPhone(kind) || schemas.ContainsPhone(value) {
		return page
	}
	return page + "?kind=" + url.QueryEscape(kind) + "&value=" + url.QueryEscape(value)
}

func itoa(n int) string { return strconv.Itoa(n) }
