package console

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/backtest"
)

// job is one backtest run started from the console: it runs in the background on the node that
// started it, reports progress and can be cancelled. Its state is written to Deps.State (every
// second while it changes, at least every heartbeat, and when it ends, with the report), so that
// every node lists it, shows its progress as last written, its report once done, and can ask for
// it to be cancelled: the node running it looks for such a request every second.
type job struct {
	id, who  string
	from, to time.Time
	hours    int
	started  time.Time
	cancel   context.CancelFunc

	mu        sync.Mutex
	progress  backtest.Progress
	report    *backtest.Report
	err       error
	done      bool
	stopped   bool   // cancelled by an admin
	stoppedBy string // who cancelled it
	finished  time.Time
}

// jobView is a job's state for templates and the progress JSON.
type jobView struct {
	ID        string           `json:"id"`
	Who       string           `json:"who"`
	Hours     int              `json:"hours"`
	From      time.Time        `json:"from"`
	To        time.Time        `json:"to"`
	Started   time.Time        `json:"started"`
	Read      int64            `json:"read"`
	Compared  int64            `json:"compared"`
	Changed   int64            `json:"changed"`
	At        time.Time        `json:"at"`
	Percent   float64          `json:"percent"`
	Done      bool             `json:"done"`
	Cancelled bool             `json:"cancelled"`
	Error     string           `json:"error,omitempty"`
	Node      string           `json:"node"`                // the node running it
	Here      bool             `json:"here"`                // this node runs it: progress is live
	Updated   time.Time        `json:"updated,omitzero"`    // when its node last wrote its state
	Lost      bool             `json:"lost,omitempty"`      // not done, and its node stopped writing
	CancelBy  string           `json:"cancel_by,omitempty"` // an admin asked to cancel it
	Report    *backtest.Report `json:"-"`
}

// storedJob is a job as Deps.State keeps it.
type storedJob struct {
	jobView
	Report *backtest.Report `json:"report,omitempty"`
}

// Heartbeats of a running job's state, and how long without one makes it lost (its node stopped).
const (
	jobWriteEvery = time.Second
	jobHeartbeat  = 5 * time.Second
	jobLostAfter  = 30 * time.Second
)

func (j *job) view(node string) *jobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := &jobView{ID: j.id, Who: j.who, Hours: j.hours, From: j.from, To: j.to, Started: j.started,
		Read: j.progress.Read, Compared: j.progress.Compared, Changed: j.progress.Changed, At: j.progress.At,
		Done: j.done, Cancelled: j.stopped, CancelBy: j.stoppedBy, Report: j.report, Node: node, Here: true}
	if j.err != nil {
		v.Error = j.err.Error()
	}
	// Events are read in time order: the share of the period behind the last event read.
	if span := j.to.Sub(j.from); span > 0 && !j.progress.At.IsZero() {
		v.Percent = min(100, max(0, 100*float64(j.progress.At.Sub(j.from))/float64(span)))
	}
	if j.done {
		v.Percent = 100
	}
	return v
}

// stop cancels the job on behalf of who; false when it had finished.
func (j *job) stop(who string) bool {
	j.mu.Lock()
	running := !j.done
	if running && !j.stopped {
		j.stopped, j.stoppedBy = true, who
	}
	j.mu.Unlock()
	j.cancel()
	return running
}

// jobs are the backtests running or run on this node.
type jobs struct {
	max  int
	mu   sync.Mutex
	byID map[string]*job
	ids  []string // oldest first
}

func newJobs(max int) *jobs { return &jobs{max: max, byID: map[string]*job{}} }

func (js *jobs) add(j *job) error {
	js.mu.Lock()
	defer js.mu.Unlock()
	running := 0
	for _, o := range js.byID {
		o.mu.Lock()
		if !o.done {
			running++
		}
		o.mu.Unlock()
	}
	if running >= 2 {
		return fmt.Errorf("%d backtests are running on this node: wait for one or cancel it", running)
	}
	// Forget the oldest finished jobs beyond max.
	for len(js.ids) >= js.max {
		old := js.byID[js.ids[0]]
		old.mu.Lock()
		done := old.done
		old.mu.Unlock()
		if !done {
			break
		}
		delete(js.byID, js.ids[0])
		js.ids = js.ids[1:]
	}
	js.byID[j.id] = j
	js.ids = append(js.ids, j.id)
	return nil
}

func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.byID[id]
}

func (js *jobs) all() []*job {
	js.mu.Lock()
	defer js.mu.Unlock()
	out := make([]*job, 0, len(js.ids))
	for _, id := range js.ids {
		out = append(out, js.byID[id])
	}
	return out
}

// writeJob writes j's state (with its report once done) to Deps.State.
func (s *Server) writeJob(ctx context.Context, j *job) error {
	v := j.view(s.d.Node)
	body, err := json.Marshal(storedJob{jobView: *v, Report: v.Report})
	if err != nil {
		return err
	}
	return s.put(ctx, Item{Kind: ItemBacktest, ID: j.id, Admin: j.who, Body: body})
}

// storedView decodes a job another node (or this one, before) wrote.
func (s *Server) storedView(it Item) (*jobView, error) {
	var sj storedJob
	if err := schemas.UnmarshalJSON(it.Body, &sj, "from", "to", "started", "at"); err != nil {
		return nil, fmt.Errorf("backtest %s: %w", it.ID, err)
	}
	v := sj.jobView
	v.Report, v.Node, v.Here, v.Updated = sj.Report, it.Node, false, it.At
	if !v.Done && time.Since(it.At) > jobLostAfter {
		v.Lost = true
	}
	return &v, nil
}

// jobOf returns a backtest's view: live from this node when it runs here, else as its node last
// wrote it; nil when there is none.
func (s *Server) jobOf(ctx context.Context, id string) (*jobView, error) {
	if !stateIDPattern.MatchString(id) {
		return nil, nil // no id this console made: not looked up (it is whatever was sent)
	}
	if j := s.jobs.get(id); j != nil {
		return j.view(s.d.Node), nil
	}
	it, ok, err := s.d.State.Get(ctx, ItemBacktest, id)
	if err != nil || !ok {
		return nil, err
	}
	v, err := s.storedView(it)
	if err != nil {
		return nil, err
	}
	if _, asked, err := s.d.State.Get(ctx, ItemBacktestCancel, id); err == nil && asked && !v.Done {
		v.CancelBy = "requested"
	}
	return v, nil
}

// jobList returns every node's backtests, newest first, at most MaxJobs; with the reason when only
// this node's could be listed.
func (s *Server) jobList(ctx context.Context) ([]*jobView, string) {
	byID := map[string]*jobView{}
	for _, j := range s.jobs.all() {
		byID[j.id] = j.view(s.d.Node)
	}
	its, err := s.d.State.List(ctx, ItemBacktest)
	for _, it := range its {
		if _, here := byID[it.ID]; here {
			continue
		}
		if v, err := s.storedView(it); err == nil {
			byID[it.ID] = v
		}
	}
	out := make([]*jobView, 0, len(byID))
	for _, v := range byID {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *jobView) int { return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(a.ID, b.ID)) })
	if len(out) > s.d.MaxJobs {
		out = out[:s.d.MaxJobs]
	}
	return out, notAvailable("backtests of other nodes", err)
}

// forgetOldJobs removes from Deps.State the finished runs beyond the newest MaxJobs.
func (s *Server) forgetOldJobs(ctx context.Context, who string) {
	its, err := s.d.State.List(ctx, ItemBacktest)
	if err != nil || len(its) < s.d.MaxJobs {
		return
	}
	var vs []*jobView
	for _, it := range its {
		if v, err := s.storedView(it); err == nil {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, func(a, b *jobView) int { return b.Started.Compare(a.Started) })
	for i, v := range vs {
		if i >= s.d.MaxJobs-1 && (v.Done || v.Lost) {
			_ = s.put(ctx, Item{Kind: ItemBacktest, ID: v.ID, Admin: who, Deleted: true})
		}
	}
}

// watchJob writes j's state while it runs (when it changed, at most every jobWriteEvery, and every
// jobHeartbeat) and cancels it when an admin asked on any node. It returns when j is done.
func (s *Server) watchJob(ctx context.Context, j *job) {
	t := time.NewTicker(jobWriteEvery)
	defer t.Stop()
	var last backtest.Progress
	lastWrite := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if it, asked, err := s.d.State.Get(qctx, ItemBacktestCancel, j.id); err == nil && asked {
			if j.stop(it.Admin) {
				s.log.Info("console: backtest cancelled from another node", "id", j.id, "admin", it.Admin, "node", it.Node)
			}
		}
		j.mu.Lock()
		p := j.progress
		j.mu.Unlock()
		if p != last || time.Since(lastWrite) >= jobHeartbeat {
			if err := s.writeJob(qctx, j); err != nil {
				s.log.Warn("console: backtest progress not shared", "id", j.id, "err", err)
			}
			last, lastWrite = p, time.Now()
		}
		cancel()
	}
}

// postedDraft is the draft page of the draft a form sent (the backtest form sends the editor's).
func (s *Server) postedDraft(ctx context.Context, r *http.Request, who string) draftData {
	d := draftData{MaxHours: s.d.MaxHours, Shared: s.shared, Draft: strings.ReplaceAll(r.PostForm.Get("draft"), "\r\n", "\n"),
		Rev: r.PostForm.Get("rev"), Base: r.PostForm.Get("base")}
	if s.d.Rules != nil {
		d.Live, _ = s.d.Rules.Live(ctx)
	}
	if strings.TrimSpace(d.Draft) == "" {
		// No editor's text (a page without its script): the saved draft, else the live pack.
		it, rev, err := s.savedDraft(ctx, who)
		d.Draft, d.Rev = string(d.Live.Content), rev
		if err == nil && rev != noDraft {
			d.Draft = string(it.Body)
		}
	}
	if !versionPattern.MatchString(d.Base) {
		d.Base = d.Live.Version
	}
	return d
}

func (s *Server) backtestStart(w http.ResponseWriter, r *http.Request, ss *session) {
	hours, err := strconv.Atoi(r.PostForm.Get("hours"))
	back := func(msg string) {
		http.Redirect(w, r, "/console/rules/draft?"+s.notice(ss, msg), http.StatusSeeOther)
	}
	switch {
	case s.d.Backtest == nil:
		back("Backtest: " + notAvailable("backtests", ErrNotAvailable))
		return
	case err != nil || hours < 1 || hours > s.d.MaxHours:
		// Next to the field, with the editor's draft as sent (a redirect to the draft page
		// showed the saved one: an edit not saved yet was gone).
		pctx, pcancel := pageCtx(r)
		defer pcancel()
		d := s.postedDraft(pctx, r, ss.who)
		d.Backtests, d.BacktestsErr = s.jobList(pctx)
		s.render(w, r, http.StatusBadRequest, "draft", ss, page{Title: "Draft", Nav: "rules", Data: d,
			Errs: map[string]string{"hours": fmt.Sprintf("hours: a whole number from 1 to %d", s.d.MaxHours)}})
		return
	}
	pctx, pcancel := pageCtx(r)
	defer pcancel()
	// The draft as it is in the editor (the page's script sends it): an edit not linted first
	// was not in the saved draft, and the backtest ran the pack before it (or the live pack
	// against itself: "no change"). It is saved as the draft, as lint saves it.
	var draft []byte
	if posted := strings.ReplaceAll(r.PostForm.Get("draft"), "\r\n", "\n"); strings.TrimSpace(posted) != "" {
		if len(posted) > maxDraft {
			back(fmt.Sprintf("Backtest: the draft is %d bytes, at most %d", len(posted), maxDraft))
			return
		}
		draft = []byte(posted)
		// Saved as the draft page saves it: not over a draft saved after the page was shown.
		s.draftMu.Lock()
		conflict, rev, err := s.draftConflictOf(pctx, ss.who, r.PostForm.Get("rev"), draft)
		if err == nil && conflict == nil && !schemas.ContainsPhone(posted) {
			err = s.saveDraft(pctx, ss.who, draft, r.PostForm.Get("base"))
		}
		s.draftMu.Unlock()
		if err != nil {
			s.log.Warn("console: backtest of a draft not saved", "admin", ss.who, "err", err)
		}
		if conflict != nil {
			d := s.postedDraft(pctx, r, ss.who)
			d.Rev = rev
			s.renderConflict(pctx, w, r, ss, "Backtest not started", conflict, d)
			return
		}
	} else if draft, err = s.draftOf(pctx, ss.who); err != nil {
		back("Backtest: " + err.Error())
		return
	}
	if draft == nil {
		live, err := s.d.Rules.Live(pctx)
		if err != nil {
			back("Backtest: " + err.Error())
			return
		}
		draft = live.Content
	}
	if errs := s.d.Rules.Lint(draft); len(errs) > 0 {
		back(fmt.Sprintf("Backtest: the draft has %d problem(s); lint it first", len(errs)))
		return
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	now := s.d.Now().UTC()
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{id: hex.EncodeToString(b[:]), who: ss.who, hours: hours, from: now.Add(-time.Duration(hours) * time.Hour), to: now, started: now, cancel: cancel}
	if err := s.jobs.add(j); err != nil {
		cancel()
		back("Backtest: " + err.Error())
		return
	}
	s.forgetOldJobs(pctx, ss.who)
	if err := s.writeJob(pctx, j); err != nil {
		s.log.Warn("console: backtest not shared with other nodes", "id", j.id, "err", err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	go s.watchJob(watchCtx, j)
	go func() {
		rep, err := s.d.Backtest.Backtest(ctx, draft, j.from, j.to, func(p backtest.Progress) {
			j.mu.Lock()
			j.progress = p
			j.mu.Unlock()
		})
		stopWatch()
		j.mu.Lock()
		j.report, j.err, j.done, j.finished = rep, err, true, time.Now()
		if j.stopped {
			j.err = fmt.Errorf("cancelled by %s", j.stoppedBy)
		}
		j.mu.Unlock()
		cancel()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.writeJob(wctx, j); err != nil {
			s.log.Warn("console: backtest result not shared with other nodes", "id", j.id, "err", err)
		}
		wcancel()
		s.log.Info("console: backtest finished", "id", j.id, "admin", j.who, "err", err)
	}()
	s.log.Info("console: backtest started", "id", j.id, "admin", ss.who, "hours", hours)
	http.Redirect(w, r, "/console/backtests/"+j.id, http.StatusSeeOther)
}

func (s *Server) backtestPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	v, err := s.jobOf(ctx, r.PathValue("id"))
	switch {
	case err != nil:
		s.render(w, r, http.StatusServiceUnavailable, "error", ss, page{Title: "Backtest", Nav: "rules", Problem: notAvailable("backtests", err)})
		return
	case v == nil:
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Backtest", Nav: "rules", Problem: "No backtest " + schemas.ShowName(r.PathValue("id"), 32) + " (the last " + itoa(s.d.MaxJobs) + " runs are kept)."})
		return
	}
	s.render(w, r, http.StatusOK, "backtest", ss, page{Title: "Backtest " + v.ID, Nav: "rules", Message: s.noticeOf(r, ss), Data: v})
}

func (s *Server) backtestProgress(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	v, err := s.jobOf(ctx, r.PathValue("id"))
	switch {
	case err != nil:
		http.Error(w, `{"error":"backtests not available"}`, http.StatusServiceUnavailable)
		return
	case v == nil:
		http.Error(w, `{"error":"no such backtest"}`, http.StatusNotFound)
		return
	}
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// backtestCancel stops a run of this node at once; for a run of another node it leaves a request
// in Deps.State, which that node acts on within a second.
func (s *Server) backtestCancel(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := pageCtx(r)
	defer cancel()
	id := r.PathValue("id")
	back := func(msg string) {
		http.Redirect(w, r, "/console/backtests/"+id+"?"+s.notice(ss, msg), http.StatusSeeOther)
	}
	if j := s.jobs.get(id); j != nil {
		j.stop(ss.who)
		s.log.Info("console: backtest cancelled", "id", id, "admin", ss.who)
		back("Cancelled by " + ss.who + ".")
		return
	}
	v, err := s.jobOf(ctx, id)
	switch {
	case err != nil:
		back("Not cancelled: " + err.Error())
		return
	case v == nil:
		http.Redirect(w, r, "/console/rules/draft?"+s.notice(ss, "No such backtest."), http.StatusSeeOther)
		return
	case v.Done:
		back("It had finished already.")
		return
	}
	if err := s.put(ctx, Item{Kind: ItemBacktestCancel, ID: id, Admin: ss.who}); err != nil {
		back("Not cancelled: " + err.Error())
		return
	}
	s.log.Info("console: backtest cancel requested", "id", id, "admin", ss.who, "runs_on", v.Node)
	back(fmt.Sprintf("Cancel requested by %s: node %s, which runs it, stops it within a second or two.", ss.who, v.Node))
}
