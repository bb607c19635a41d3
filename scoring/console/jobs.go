package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/riskflow/riskflow/scoring/backtest"
)

// job is one backtest run started from the console: it runs in the background, reports progress
// and can be cancelled. Jobs live on the node that started them.
type job struct {
	id, who  string
	from, to time.Time
	hours    int
	started  time.Time
	cancel   context.CancelFunc

	mu       sync.Mutex
	progress backtest.Progress
	report   *backtest.Report
	err      error
	done     bool
	stopped  bool // cancelled by an admin
	finished time.Time
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
	Report    *backtest.Report `json:"-"`
}

func (j *job) view() *jobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := &jobView{ID: j.id, Who: j.who, Hours: j.hours, From: j.from, To: j.to, Started: j.started,
		Read: j.progress.Read, Compared: j.progress.Compared, Changed: j.progress.Changed, At: j.progress.At,
		Done: j.done, Cancelled: j.stopped, Report: j.report}
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

// list returns every job, newest first (who is unused: admins see each other's runs).
func (js *jobs) list(who string) []*jobView {
	js.mu.Lock()
	ids := append([]string(nil), js.ids...)
	js.mu.Unlock()
	var out []*jobView
	for i := len(ids) - 1; i >= 0; i-- {
		if j := js.get(ids[i]); j != nil {
			out = append(out, j.view())
		}
	}
	return out
}

func (s *Server) backtestStart(w http.ResponseWriter, r *http.Request, ss *session) {
	hours, err := strconv.Atoi(r.PostForm.Get("hours"))
	back := func(msg string) {
		http.Redirect(w, r, "/console/rules/draft?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	switch {
	case s.d.Backtest == nil:
		back("Backtest: " + notAvailable("backtests", ErrNotAvailable))
		return
	case err != nil || hours < 1 || hours > s.d.MaxHours:
		back(fmt.Sprintf("hours: a whole number from 1 to %d", s.d.MaxHours))
		return
	}
	draft := s.draftOf(nil, ss.who)
	if draft == nil {
		ctx, cancel := pageCtx(r)
		live, err := s.d.Rules.Live(ctx)
		cancel()
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
	go func() {
		rep, err := s.d.Backtest.Backtest(ctx, draft, j.from, j.to, func(p backtest.Progress) {
			j.mu.Lock()
			j.progress = p
			j.mu.Unlock()
		})
		j.mu.Lock()
		j.report, j.err, j.done, j.finished = rep, err, true, time.Now()
		if j.stopped {
			j.err = fmt.Errorf("cancelled by %s", j.who)
		}
		j.mu.Unlock()
		cancel()
		s.log.Info("console: backtest finished", "id", j.id, "admin", j.who, "err", err)
	}()
	s.log.Info("console: backtest started", "id", j.id, "admin", ss.who, "hours", hours)
	http.Redirect(w, r, "/console/backtests/"+j.id, http.StatusSeeOther)
}

func (s *Server) backtestPage(w http.ResponseWriter, r *http.Request, ss *session) {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		s.render(w, r, http.StatusNotFound, "error", ss, page{Title: "Backtest", Nav: "rules", Problem: "No backtest " + r.PathValue("id") + " on this node (runs are kept in memory on the node that started them)."})
		return
	}
	s.render(w, r, http.StatusOK, "backtest", ss, page{Title: "Backtest " + j.id, Nav: "rules", Data: j.view()})
}

func (s *Server) backtestProgress(w http.ResponseWriter, r *http.Request, ss *session) {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		http.Error(w, `{"error":"no such backtest"}`, http.StatusNotFound)
		return
	}
	b, _ := json.Marshal(j.view())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (s *Server) backtestCancel(w http.ResponseWriter, r *http.Request, ss *session) {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		http.Redirect(w, r, "/console/rules/draft?msg="+url.QueryEscape("No such backtest."), http.StatusSeeOther)
		return
	}
	j.mu.Lock()
	if !j.done {
		j.stopped = true
	}
	j.mu.Unlock()
	j.cancel()
	s.log.Info("console: backtest cancelled", "id", j.id, "admin", ss.who)
	http.Redirect(w, r, "/console/backtests/"+j.id, http.StatusSeeOther)
}
