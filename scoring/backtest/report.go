package backtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Report is the outcome of a backtest. It marshals to JSON as it is (see the field tags) and
// prints as text with WriteText.
type Report struct {
	RunID      string    `json:"run_id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// From and To are the reported period as requested ([From, To); zero when open).
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// FirstEvent and LastEvent are the ts of the first and last event read (warm-up included).
	FirstEvent time.Time `json:"first_event,omitzero"`
	LastEvent  time.Time `json:"last_event,omitzero"`

	Current   PackInfo `json:"current"`
	Candidate PackInfo `json:"candidate"`

	// Read counts every event the Source yielded within the period's end: Events +
	// WarmUpEvents + Skipped.
	Read int64 `json:"read"`
	// Events were scored by both packs and compared.
	Events int64 `json:"events"`
	// WarmUpEvents came before From and only filled the feature windows.
	WarmUpEvents int64 `json:"warmup_events"`
	// Skipped could not be replayed; SkipReasons says why, reason → events.
	Skipped     int64            `json:"skipped"`
	SkipReasons map[string]int64 `json:"skip_reasons,omitempty"`
	// Changed is how many compared events got a different score from the candidate.
	Changed int64 `json:"changed"`
	// DistinctPhones is how many numbers (phone hashes) the compared events carried (the
	// warm-up's own are left out: "105 compared, 29,887 distinct numbers" counted them).
	DistinctPhones int64 `json:"distinct_phones"`

	// Transitions is the score transition matrix: one entry per (current score, candidate
	// score) pair that occurred, unchanged pairs included, in matrix order. Examples holds up
	// to Options.Examples event ids for pairs whose score changed.
	Transitions []Transition `json:"transitions"`
	// Rules has one entry per rule of either pack, in the current pack's order followed by
	// the candidate's new rules.
	Rules []RuleDiff `json:"rules"`
	// EvalErrors counts failed rule evaluations: "current" or "candidate" → rule id → events.
	EvalErrors map[string]map[string]int64 `json:"eval_errors,omitempty"`
	// Quality is precision and recall against the labels; nil when no labels were given.
	Quality *Quality `json:"quality,omitempty"`
	// FlagAt is the score at or above which an event counts as flagged (Apps, Quality).
	FlagAt int `json:"flag_at"`
	// Apps breaks the compared events down by app, most events first: a change that moves
	// every total a little may move one app's verdicts a lot. At most 10,000 apps; the events
	// of any more are summed in a last entry with an empty app_id and other_apps set.
	Apps []AppDiff `json:"apps"`

	// Partial is set when the run stopped before the end of its period (interrupted, or reading
	// the events failed): every count covers the events up to StoppedAt (the ts of the last
	// event compared) only, and StopReason says why it stopped.
	Partial    bool      `json:"partial,omitempty"`
	StoppedAt  time.Time `json:"stopped_at,omitzero"`
	StopReason string    `json:"stop_reason,omitempty"`

	DurationSec float64 `json:"duration_seconds"`
	// EventsPerSec is Read per second of the run: reading, rebuilding and scoring every event
	// twice.
	EventsPerSec float64 `json:"events_per_sec"`
}

// AppDiff is one app's share of a backtest.
type AppDiff struct {
	AppID     string `json:"app_id"`
	OtherApps int    `json:"other_apps,omitempty"` // the entry sums this many apps past the limit
	Events    int64  `json:"events"`
	Changed   int64  `json:"changed"`
	// CurrentFlagged and CandidateFlagged count the app's events scored at or above FlagAt by
	// each pack: the logins stepped up or blocked.
	CurrentFlagged   int64       `json:"current_flagged"`
	CandidateFlagged int64       `json:"candidate_flagged"`
	Quality          *AppQuality `json:"quality,omitempty"` // nil without labels
}

// AppQuality is precision and recall of both packs over one app's labeled events.
type AppQuality struct {
	Labeled   int64       `json:"labeled"`
	Current   PackQuality `json:"current"`
	Candidate PackQuality `json:"candidate"`
}

// App returns the breakdown of one app, or nil.
func (r *Report) App(id string) *AppDiff {
	for i := range r.Apps {
		if r.Apps[i].AppID == id && r.Apps[i].OtherApps == 0 {
			return &r.Apps[i]
		}
	}
	return nil
}

// PackInfo names a rule pack.
type PackInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Rules   int    `json:"rules"`
}

// Transition is one cell of the transition matrix.
type Transition struct {
	From     int      `json:"from"`
	To       int      `json:"to"`
	Count    int64    `json:"count"`
	Examples []string `json:"examples,omitempty"`
}

// RuleDiff compares one rule's hits under both packs. A mode is "" and a level 0 for a pack
// that does not have the rule. Hits count every match, shadow ones included.
type RuleDiff struct {
	Rule           string   `json:"rule"`
	Tag            string   `json:"tag"`
	CurrentMode    string   `json:"current_mode"`
	CandidateMode  string   `json:"candidate_mode"`
	CurrentLevel   int      `json:"current_level"`
	CandidateLevel int      `json:"candidate_level"`
	CurrentHits    int64    `json:"current_hits"`
	CandidateHits  int64    `json:"candidate_hits"`
	Gained         int64    `json:"gained"` // events only the candidate's rule matched
	Lost           int64    `json:"lost"`   // events only the current's rule matched
	GainedExamples []string `json:"gained_examples,omitempty"`
	LostExamples   []string `json:"lost_examples,omitempty"`
}

// Changed reports whether the rule differs between the packs in any way: hits, presence,
// mode or level.
func (d RuleDiff) Changed() bool {
	return d.Gained != 0 || d.Lost != 0 || d.CurrentMode != d.CandidateMode || d.CurrentLevel != d.CandidateLevel
}

// Quality is precision and recall of both packs against labels.
type Quality struct {
	FlagAt    int         `json:"flag_at"` // an event is flagged when its score is at least this
	Labeled   int64       `json:"labeled"` // compared events that had a label
	Current   PackQuality `json:"current"`
	Candidate PackQuality `json:"candidate"`
}

// PackQuality is one pack's confusion counts over the labeled events. Precision is nil when
// the pack flagged no labeled event, Recall when there was no labeled attack.
type PackQuality struct {
	TP        int64    `json:"tp"`
	FP        int64    `json:"fp"`
	FN        int64    `json:"fn"`
	TN        int64    `json:"tn"`
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
}

// Count returns the number of events that went from score from (current pack) to score to
// (candidate pack).
func (r *Report) Count(from, to int) int64 {
	for _, t := range r.Transitions {
		if t.From == from && t.To == to {
			return t.Count
		}
	}
	return 0
}

// Rule returns the diff of one rule, or nil.
func (r *Report) Rule(id string) *RuleDiff {
	for i := range r.Rules {
		if r.Rules[i].Rule == id {
			return &r.Rules[i]
		}
	}
	return nil
}

// ChangedRules returns the rules that differ between the packs (see RuleDiff.Changed).
func (r *Report) ChangedRules() []RuleDiff {
	var out []RuleDiff
	for _, d := range r.Rules {
		if d.Changed() {
			out = append(out, d)
		}
	}
	return out
}

// JSON is the report as indented JSON. Its lists are lists even when empty (a period without
// events): "transitions": [], not null, which a script iterating them (jq '.transitions[]')
// cannot take.
func (r *Report) JSON() ([]byte, error) {
	out := *r
	if out.Transitions == nil {
		out.Transitions = []Transition{}
	}
	if out.Rules == nil {
		out.Rules = []RuleDiff{}
	}
	if out.Apps == nil {
		out.Apps = []AppDiff{}
	}
	return json.MarshalIndent(&out, "", "  ")
}

// String is the text report.
func (r *Report) String() string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

// WriteText prints the report for people: the summary, the transition matrix, the changed
// transitions with examples, the rules whose hits differ, and precision and recall.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := func(format string, args ...any) { fmt.Fprintf(ew, format, args...) }

	p("backtest %s\n", r.RunID)
	if r.Partial {
		p("  PARTIAL    stopped after the events up to %s (%s): the counts below cover %s to there only\n",
			r.StoppedAt.UTC().Format(time.RFC3339), r.StopReason, timeOr(r.From, r.FirstEvent))
	}
	p("  current    %s@%s (%d rules)\n", r.Current.Name, r.Current.Version, r.Current.Rules)
	p("  candidate  %s@%s (%d rules)\n", r.Candidate.Name, r.Candidate.Version, r.Candidate.Rules)
	p("  period     %s to %s", timeOr(r.From, r.FirstEvent), timeOr(r.To, r.LastEvent))
	if r.WarmUpEvents > 0 {
		p(" (after %s events of warm-up)", thousands(r.WarmUpEvents))
	}
	p("\n")
	p("  events     %s compared, %s changed score (%s)", thousands(r.Events), thousands(r.Changed), percent(r.Changed, r.Events))
	if r.Skipped > 0 {
		p(", %s skipped", thousands(r.Skipped))
	}
	p(", %s distinct numbers\n", thousands(r.DistinctPhones))
	p("  speed      %s events/s (%s events in %.1fs)\n\n", thousands(int64(r.EventsPerSec)), thousands(r.Read), r.DurationSec)

	var matrix [4][4]int64
	for _, t := range r.Transitions {
		i, ok1 := scoreIndex(t.From)
		j, ok2 := scoreIndex(t.To)
		if ok1 && ok2 {
			matrix[i][j] = t.Count
		}
	}
	p("score transitions (rows: current score, columns: candidate score)\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t0\t300\t600\t900\t\n")
	for i, from := range Scores {
		fmt.Fprintf(tw, "%d\t", from)
		for j := range Scores {
			fmt.Fprintf(tw, "%s\t", thousands(matrix[i][j]))
		}
		fmt.Fprintf(tw, "\n")
	}
	_ = tw.Flush()

	changed := false
	for _, t := range r.Transitions {
		if t.From == t.To {
			continue
		}
		if !changed {
			p("\nchanged verdicts\n")
			changed = true
		}
		p("  %3d → %-3d  %10s  e.g. %s\n", t.From, t.To, thousands(t.Count), strings.Join(t.Examples, ", "))
	}
	if !changed {
		p("\nno verdict changed\n")
	}

	if len(r.Apps) > 1 {
		p("\nby app (flagged = score ≥ %d; most events first", r.FlagAt)
		if len(r.Apps) > maxAppsShown {
			p("; the first %d of %d, --json has all", maxAppsShown, len(r.Apps))
		}
		p(")\n")
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		labels := r.Quality != nil
		fmt.Fprintf(tw, "  app\tevents\tchanged\tcurrent flagged\tcandidate flagged")
		if labels {
			fmt.Fprintf(tw, "\tlabeled\tprecision cur → cand\trecall cur → cand")
		}
		fmt.Fprintf(tw, "\n")
		for _, a := range r.Apps[:min(len(r.Apps), maxAppsShown)] {
			name := showApp(a.AppID)
			if a.OtherApps > 0 {
				name = fmt.Sprintf("(%s more apps)", thousands(int64(a.OtherApps)))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s (%s)\t%s (%s)\t%s (%s)", name, thousands(a.Events), thousands(a.Changed), percent(a.Changed, a.Events),
				thousands(a.CurrentFlagged), percent(a.CurrentFlagged, a.Events), thousands(a.CandidateFlagged), percent(a.CandidateFlagged, a.Events))
			if labels && a.Quality != nil {
				fmt.Fprintf(tw, "\t%s\t%s → %s\t%s → %s", thousands(a.Quality.Labeled),
					ratio(a.Quality.Current.Precision), ratio(a.Quality.Candidate.Precision), ratio(a.Quality.Current.Recall), ratio(a.Quality.Candidate.Recall))
			}
			fmt.Fprintf(tw, "\n")
		}
		_ = tw.Flush()
	}

	diffs := r.ChangedRules()
	if len(diffs) == 0 {
		p("\nno rule changed its hits, mode or level\n")
	} else {
		p("\nrules that differ\n")
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  rule\tcurrent\tcandidate\tcurrent hits\tcandidate hits\tgained\tlost\texamples (+gained -lost)\n")
		for _, d := range diffs {
			var ex []string
			for _, e := range d.GainedExamples {
				ex = append(ex, "+"+e)
			}
			for _, e := range d.LostExamples {
				ex = append(ex, "-"+e)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Rule,
				ruleSide(d.CurrentMode, d.CurrentLevel), ruleSide(d.CandidateMode, d.CandidateLevel),
				thousands(d.CurrentHits), thousands(d.CandidateHits), thousands(d.Gained), thousands(d.Lost),
				strings.Join(ex, " "))
		}
		_ = tw.Flush()
	}

	if len(r.SkipReasons) > 0 {
		p("\nskipped events\n")
		for _, k := range sortedKeys(r.SkipReasons) {
			p("  %10s  %s\n", thousands(r.SkipReasons[k]), k)
		}
	}
	if len(r.EvalErrors) > 0 {
		p("\nrule evaluation errors (the rule was skipped on these events)\n")
		for _, side := range []string{"current", "candidate"} {
			for _, k := range sortedKeys(r.EvalErrors[side]) {
				p("  %-9s  %-30s %s\n", side, k, thousands(r.EvalErrors[side][k]))
			}
		}
	}

	if q := r.Quality; q != nil {
		p("\nagainst labels (%s labeled events, flagged = score ≥ %d)\n", thousands(q.Labeled), q.FlagAt)
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "\tprecision\trecall\tTP\tFP\tFN\tTN\t\n")
		for _, row := range []struct {
			name string
			q    PackQuality
		}{{"current", q.Current}, {"candidate", q.Candidate}} {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.name, ratio(row.q.Precision), ratio(row.q.Recall),
				thousands(row.q.TP), thousands(row.q.FP), thousands(row.q.FN), thousands(row.q.TN))
		}
		_ = tw.Flush()
	}
	return ew.err
}

// maxAppsShown is how many apps the text report lists (the JSON has every one).
const maxAppsShown = 20

// showApp is an app id as the text report shows it: as stored unless it holds characters that
// would break the table's line or hide as formatting (control and bidi characters), quoted then.
func showApp(id string) string {
	if id == "" || strings.IndexFunc(id, func(c rune) bool { return c < 0x20 || c == 0x7f || unicode.Is(unicode.Bidi_Control, c) || c == '\t' }) >= 0 {
		return strconv.QuoteToGraphic(id)
	}
	return id
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), nil
}

func ruleSide(mode string, level int) string {
	if mode == "" {
		return "-"
	}
	return fmt.Sprintf("%s %d", mode, level)
}

func timeOr(t, alt time.Time) string {
	if t.IsZero() {
		t = alt
	}
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func ratio(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *v)
}

// thousands renders n with thin separators: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
