package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/console"
	"github.com/riskflow/riskflow/scoring/console/consoletest"
)

// listsTestApp is an app on an embedded broker (kfake) with a lists file holding file, its
// topics created, ready for startLists; it stops at the end of the test.
func listsTestApp(t *testing.T, file string) (a *app, path string, ctx context.Context, g *errgroup.Group) {
	t.Helper()
	path = filepath.Join(tempDir(t), "lists.txt")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg := Default()
	cfg.Scoring.PhoneHashKey, cfg.Scoring.Lists = "k", path
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	if a, err = newApp(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g = &errgroup.Group{}
	t.Cleanup(func() { cancel(); g.Wait() }) // before the cluster closes (cleanups run last first)
	if err := a.prepareKafka(ctx); err != nil {
		t.Fatal(err)
	}
	return a, path, ctx, g
}

// The console's lists: entries added go to the lists topic (a number only as its keyed hash and
// masked form, with who/when/why), apply to this node's scorer once Add returns; the lists file's
// hand-written lines are listed and kept, and changed only in the file.
func TestConsoleLists(t *testing.T) {
	const handWritten = "# hand-written\nallow ip 203.0.113.7  # partner gateway\n"
	a, path, ctx, g := listsTestApp(t, handWritten)
	cfg := a.cfg
	// Entries are kept until removed: the topic is compacted, not cleaned by time.
	if p, err := consumers.TopicSetting(ctx, a.kc, cfg.Kafka.ListsTopic, "cleanup.policy"); err != nil || p != "compact" {
		t.Errorf("lists topic cleanup.policy %q (%v)", p, err)
	}
	a.startLists(ctx, g)
	if !waitFresh(ctx, a.lists) {
		t.Fatal("lists not read")
	}
	score := func(phone, ip string) int {
		t.Helper()
		rc, err := a.scorer.Check(&schemas.CheckRequest{Phone: phone, IP: netip.MustParseAddr(ip), AppID: "a", Carrier: "CM"})
		if err != nil {
			t.Fatal(err)
		}
		return rc.Score
	}
	l := &consoleLists{a: a}
	at := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	if score("13800138000", "198.51.100.1") != 0 {
		t.Fatal("blocked before it is listed")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Add(ctx, console.ListEntry{Action: "block", Kind: console.KindPhone, Value: l.HashPhone("13800138000"), Shown: "1380013****", Who: "alice", At: at, Why: "farm number, ticket #12"}))
	must(l.Add(ctx, console.ListEntry{Action: "block", Kind: console.KindCIDR, Value: "198.51.100.0/24", Shown: "198.51.100.0/24", Who: "bob", At: at.Add(time.Second), Why: "datacenter"}))
	if err := l.Add(ctx, console.ListEntry{Action: "block", Kind: console.KindCIDR, Value: "198.51.100.0/24", Who: "bob", At: at, Why: "again"}); !errors.Is(err, console.ErrInvalid) {
		t.Errorf("a duplicate entry: %v", err)
	}
	if s := score("13800138000", "203.0.113.9"); s != 900 {
		t.Errorf("listed number: score %d, want 900", s)
	}
	if s := score("13900139000", "198.51.100.20"); s != 900 {
		t.Errorf("address in a listed network: score %d, want 900", s)
	}
	if b, _ := os.ReadFile(path); string(b) != handWritten {
		t.Errorf("the lists file changed:\n%s", b)
	}
	es, err := l.Entries(ctx)
	must(err)
	if len(es) != 3 {
		t.Fatalf("entries %+v", es)
	}
	if e := es[0]; e.Kind != console.KindIP || e.Why != "partner gateway" || e.Action != "allow" || !e.File {
		t.Errorf("hand-written entry %+v", e)
	}
	if e := es[1]; e.Kind != console.KindPhone || e.Shown != "1380013****" || e.Who != "alice" || !e.At.Equal(at) || e.Why != "farm number, ticket #12" || e.File {
		t.Errorf("phone entry %+v", e)
	}
	if e := es[2]; e.Kind != console.KindCIDR || e.Value != "198.51.100.0/24" || e.Who != "bob" {
		t.Errorf("cidr entry %+v", e)
	}
	if err := l.Remove(ctx, es[0].ID, "alice"); !errors.Is(err, console.ErrInvalid) || !strings.Contains(err.Error(), "lists file") {
		t.Errorf("removing a file entry: %v", err)
	}
	must(l.Remove(ctx, es[1].ID, "alice"))
	if s := score("13800138000", "203.0.113.9"); s != 0 {
		t.Errorf("after removal: score %d, want 0", s)
	}
	if err := l.Remove(ctx, es[1].ID, "alice"); !errors.Is(err, console.ErrInvalid) {
		t.Errorf("removing twice: %v", err)
	}
}

// Lint problems come one per entry, with rule, field and line.
func TestConsoleLint(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := &consoleRules{a: a}
	bad := strings.Replace(string(packs.Default()), "when: phone_verifies_10m >= 3", "when: phone_verifies_10m >= nope", 1)
	bad = strings.Replace(bad, "level: 900", "level: 901", 1)
	errs := r.Lint([]byte(bad))
	if len(errs) != 2 {
		t.Fatalf("lint: %+v", errs)
	}
	for _, e := range errs {
		if e.Line == 0 || e.Rule == "" || e.Field == "" || e.Msg == "" {
			t.Errorf("lint entry %+v lacks line, rule, field or message", e)
		}
	}
	if errs := r.Lint(packs.Default()); errs != nil {
		t.Errorf("the default pack: %+v", errs)
	}
	// Every problem, however many (the list stopped after about 4 KB, at 35 of 200).
	var many strings.Builder
	many.WriteString("pack: x\nrules:\n")
	for i := range 200 {
		fmt.Fprintf(&many, "  - {id: r%d, tag: t, level: 300, when: 'phone_verifies_10mm >= %d'}\n", i, i)
	}
	if errs := r.Lint([]byte(many.String())); len(errs) != 200 {
		t.Errorf("lint of 200 problems: %d entries, the last %+v", len(errs), errs[len(errs)-1])
	}
	res, err := r.Test(context.Background(), packs.Default())
	if err != nil || len(res) == 0 {
		t.Fatalf("tests: %d, %v", len(res), err)
	}
	for _, x := range res {
		if len(x.Failures) > 0 {
			t.Errorf("test %s failed on the default pack: %v", x.Name, x.Failures)
		}
	}
}

// A stored decision's hits reach the console as "rule (mode): reason", one per hit, in order.
func TestDecisionHitsShowEachReason(t *testing.T) {
	d := chsink.StoredDecision{HitRules: []string{"ip_many_phones", "odd_hour"}, HitModes: []string{"enforce", "tag"},
		HitReasons: []string{"38 phones from this IP in 1h", ""}}
	got := decisionHits(d)
	want := []string{"ip_many_phones (enforce): 38 phones from this IP in 1h", "odd_hour (tag)"}
	if !slices.Equal(got, want) {
		t.Errorf("decisionHits = %q, want %q", got, want)
	}
}

// A number the lists file blocks is listed in the console by its keyed hash, as the console's own
// entries are, so that investigating it finds the entry (the page said "1380013**** is on no
// allow or block list" beside the live state's "on the block list: number": held-out run); and a
// comment beside it is shown with its numbers masked (the value was shown masked while its comment
// "called from 138 0013 9773" spelled a number out).
func TestListsFileEntriesShowNoNumber(t *testing.T) {
	hash := func(p string) string { return "hash-of-" + p }
	e, ok := parseEntry("block phone +8613800139771  # called from 138 0013 9773, tel:13800139774", hash)
	if !ok {
		t.Fatal("entry not read")
	}
	if e.Kind != console.KindPhone || e.Value != "hash-of-13800139771" || e.Shown != "1380013****" {
		t.Errorf("file phone entry %+v; want kind phone, the hash as its value, shown masked", e)
	}
	if strings.Contains(e.Why, "9773") || strings.Contains(e.Why, "9774") || !strings.HasPrefix(e.Why, "called from ") {
		t.Errorf("why %q; want the comment with its numbers masked", e.Why)
	}
	e, _ = parseEntry("block phone_hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 # console by=alice at=2026-12-05T06:00:00Z shown=1380013**** why=rang%2013800139775", hash)
	if e.Value != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" || e.Who != "alice" || strings.Contains(e.Why, "9775") {
		t.Errorf("console-written file entry %+v", e)
	}
	e, _ = parseEntry("block device d13800139999 # farm", hash)
	if e.Value != "d13800139999" || e.Shown != "d13800139999" || e.Why != "farm" {
		t.Errorf("device entry %+v: shown as written", e)
	}
}

// The lists file may block a number as written (`block phone 13800138000`): the scorer blocks it,
// and a lookup of the number in the console must say so. The console's entries carried the file's
// number itself as the value where a phone entry carries its keyed hash, so "On the lists" of the
// number said it was on no list while its live features said "on the block list". A file's number
// is listed by its keyed hash (and masked form), whatever its format in the file.
func TestConsoleListsFileNumbersMatchLookups(t *testing.T) {
	a, _, ctx, g := listsTestApp(t, "block phone 13800138000  # farm number\nallow phone +8613900139000\n")
	a.startLists(ctx, g)
	if !waitFresh(ctx, a.lists) {
		t.Fatal("lists not read")
	}
	l := &consoleLists{a: a}
	es, err := l.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{l.HashPhone("13800138000"): "1380013****", l.HashPhone("13900139000"): "1390013****"}
	for _, e := range es {
		if strings.Contains(e.Value, "13800138000") || strings.Contains(e.Value, "13900139000") {
			t.Errorf("entry %s %s carries the number itself as its value", e.Action, e.Shown)
		}
		if shown, ok := want[e.Value]; ok && e.Kind == console.KindPhone && e.Shown == shown {
			delete(want, e.Value)
		}
	}
	if len(want) > 0 {
		t.Errorf("file numbers not listed by their keyed hash: %v (entries %+v)", want, es)
	}

	// In the console: a lookup of the number shows the file's entry.
	c, err := console.New(console.Deps{Lists: l, Admins: map[string]string{"alice": "a-secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(c)
	defer ts.Close()
	b := consoletest.New(t, ts.URL, ts.Client())
	b.CSRF = b.Login("alice", "a-secret")
	_, body, _ := b.Post("/console/investigate", url.Values{"kind": {"phone"}, "value": {"138 0013 8000"}})
	if !strings.Contains(body, "farm number") || strings.Contains(body, "is on no allow or block list") {
		t.Errorf("the lookup of a number the file blocks does not show the entry:\n%s", body)
	}
}

type listsSink struct{}

func (listsSink) SetLists(*scoring.Lists) {}

// The console reads the lists on every view of the lists page and every investigation: a large
// lists file is parsed (a keyed hash per number) once per content, not once per view.
func TestConsoleListsParseTheFileOncePerContent(t *testing.T) {
	var file strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&file, "block phone 139%08d # farm\n", i)
	}
	lists := pipeline.NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, listsSink{}, slog.New(slog.DiscardHandler))
	if err := lists.SetFile([]byte(file.String())); err != nil {
		t.Fatal(err)
	}
	l := &consoleLists{a: &app{lists: lists, hasher: schemas.NewPhoneHasher([]byte("k"))}}
	ctx := context.Background()
	es, err := l.Entries(ctx)
	if err != nil || len(es) != 20000 || es[0].Shown != "1390000****" || !es[0].File {
		t.Fatalf("entries: %d %v (first %+v)", len(es), err, es[0])
	}
	if allocs := testing.AllocsPerRun(3, func() { _, _ = l.Entries(ctx) }); allocs > 100 {
		t.Errorf("reading the lists again allocated %.0f times, as if it parsed the file of 20,000 entries again", allocs)
	}
	// A changed file is read again.
	if err := lists.SetFile([]byte("allow ip 192.0.2.1 # gateway\n")); err != nil {
		t.Fatal(err)
	}
	if es, err := l.Entries(ctx); err != nil || len(es) != 1 || es[0].Kind != console.KindIP || es[0].Why != "gateway" {
		t.Errorf("after the file changed: %+v %v", es, err)
	}
}

// The console's live features of an address say which rules were not judged: those reading the
// address's windows in one app (the default pack's crowd and velocity rules), which an
// explanation without an app leaves out (scoring.Explanation.InAppOnly). The console dropped
// them, so an address whose app_ip_* windows step its app's users up read as "no rule matches"
// there, while lookup --ip said "judged in an app only (give --app)".
func TestConsoleLiveFeaturesNameTheRulesNotJudgedWithoutAnApp(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 5 {
		ev := schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", i), TS: now, AppID: "shop", Flow: schemas.FlowOneClickLogin,
			Phone: fmt.Sprintf("1390000%04d", i), IP: netip.MustParseAddr("203.0.113.9"), Outcome: schemas.OutcomeFail}
		s.Apply(&ev)
	}
	fs, err := consoleExplain{a: &app{scorer: s}}.Explain(context.Background(), console.Lookup{Kind: console.KindIP, Value: "203.0.113.9"})
	if err != nil {
		t.Fatal(err)
	}
	var notJudged []string
	for _, f := range fs {
		if rule, ok := strings.CutPrefix(f.Name, "not judged without an app: "); ok {
			notJudged = append(notJudged, rule)
			if !strings.Contains(f.Value, "--app") {
				t.Errorf("%s: %q does not say how to judge it", f.Name, f.Value)
			}
		}
	}
	if !slices.Contains(notJudged, "phones_per_ip_crowd") || !slices.Contains(notJudged, "ip_velocity") {
		t.Errorf("rules named not judged: %v, want phones_per_ip_crowd and ip_velocity among them", notJudged)
	}
	// With the app (the investigate form's app), the app's windows are there and every rule judged.
	fs, err = consoleExplain{a: &app{scorer: s}}.Explain(context.Background(), console.Lookup{Kind: console.KindIP, Value: "203.0.113.9", App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var appPhones string
	for _, f := range fs {
		if strings.HasPrefix(f.Name, "not judged") {
			t.Errorf("with the app: %s", f.Name)
		}
		if f.Name == "app_ip_phones_10m" {
			appPhones = f.Value
		}
	}
	if !strings.HasPrefix(appPhones, "5") {
		t.Errorf("with app shop: app_ip_phones_10m = %q, want 5", appPhones)
	}
}
