//go:build browser

package console_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/riskflow/riskflow/scoring/console"
)

// longHistory's attempt and decision carry the longest ids events may carry, without a space.
type longHistory struct{ countingHistory }

var longID = strings.Repeat("A", 128)

func (h *longHistory) Activity(context.Context, console.Lookup, int) (console.Activity, error) {
	return console.Activity{
		Attempts:  []console.Attempt{{AppID: "a1", EventID: strings.Repeat("E", 64), Device: longID, Outcome: "fail", ErrorCode: strings.Repeat("9", 32), Score: 300}},
		Decisions: []console.Decision{{AppID: "a1", DecisionID: strings.Repeat("D", 64), Device: longID, Score: 600}},
	}, nil
}

// Ids are free text of the apps, up to 128 characters without a space: one such device id made
// the investigate page's table 2,066 px wide in a 1,400 px window, its fraud/legit buttons out of
// sight to the right and the page header ending half-way. Every page fits the window; the long
// ids wrap in their cells.
func TestLongIDsFitTheWindow(t *testing.T) {
	lists := &fakeLists{entries: []console.ListEntry{{ID: "0123456789ab", Action: "block", Kind: console.KindDevice, Value: longID, Shown: longID,
		Why: strings.Repeat("W", 200), File: true}}}
	s, err := console.New(console.Deps{History: &longHistory{}, Lists: lists, Labels: &fakeLabels{},
		Admins: map[string]string{"alice": "a-secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts, bctx := loggedInBrowser(t, s)
	for _, tc := range []struct{ path, last string }{
		{"/console/investigate?kind=ip&value=192.0.2.1", "#attempts .mark-fraud"},
		{"/console/lists", "#entries tr.act-block td:last-child"},
	} {
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+tc.path), chromedp.WaitVisible(chromedp.CSS(tc.last))); err != nil {
			cancel()
			t.Fatalf("%s: %v", tc.path, err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`[document.documentElement.scrollWidth, window.innerWidth,
			document.querySelector(`+"`"+tc.last+"`"+`).getBoundingClientRect().right]`))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if width, window, right := got[0], got[1], got[2]; width > window || right > window {
			t.Errorf("%s: the page is %.0f px wide, its last column ends at %.0f px, in a window %.0f px wide", tc.path, width, right, window)
		}
	}
}

// loggedInBrowser serves s and returns a headless Chromium logged in to it as alice (a-secret).
func loggedInBrowser(t *testing.T, s *console.Server) (*httptest.Server, context.Context) {
	t.Helper()
	chromium := os.Getenv("RISKFLOW_CHROMIUM")
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if chromium != "" {
			break
		}
		chromium, _ = exec.LookPath(n)
	}
	if chromium == "" {
		t.Fatal("no Chromium: run deploy/local/chromium.sh install (Debian package chromium) or set RISKFLOW_CHROMIUM")
	}
	// Plain HTTP on 127.0.0.1: Chromium keeps a Secure cookie from a loopback address.
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#name"), "alice"), chromedp.SendKeys(chromedp.CSS("#secret"), "a-secret"),
		chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#filters"))); err != nil {
		t.Fatalf("log in: %v", err)
	}
	return ts, bctx
}

// A backtest's page polls its progress: once the session ended (its 8 hours) every poll got the
// 401 "log in first", which the page read as JSON, failed, and polled again every 2 s — for ever,
// its bar frozen, nothing said. It goes to the login page instead (a run gone from the node, a
// 404, shows its page's "No backtest" alike).
func TestBacktestPageLeavesAnEndedSession(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	bt := &blockingBacktest{started: make(chan struct{})}
	s, err := console.New(console.Deps{Rules: &fakeRules{live: console.PackInfo{Content: []byte("pack: p\n")}}, Backtest: bt,
		Admins: map[string]string{"alice": "a-secret"}, Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts, bctx := loggedInBrowser(t, s)
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/console/rules/draft"), chromedp.Click(chromedp.CSS("#backtest")),
		chromedp.WaitVisible(chromedp.CSS("#job"))); err != nil {
		t.Fatalf("start a backtest: %v", err)
	}
	<-bt.started
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void]("document.getElementById('progress-text').textContent.includes('1000 events read')")); err != nil {
		t.Fatalf("the page does not show the run's progress: %v", err)
	}
	mu.Lock()
	now = now.Add(9 * time.Hour) // the session's 8 hours are over
	mu.Unlock()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#login-form"))); err != nil {
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		t.Fatalf("the backtest page after the session ended: still at %s (%v)", loc, err)
	}
}
