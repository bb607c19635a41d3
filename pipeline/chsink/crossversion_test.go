package chsink

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/deploy/grafana"
	"github.com/riskflow/riskflow/schemas"
)

// The cross-version check (TestSQLOnBothClickHouses, build tags integration and chdb) runs every
// statement riskflow ships or sends on the ClickHouse 18.16 server of CI and on current
// ClickHouse (chDB), over one fixture, and compares the results. This file builds the fixture
// and the plan of statements; it needs no server, and its own tests run with the unit tests.

// crossFixture is the one dataset both servers get.
type crossFixture struct {
	records     []schemas.ScoreRecord // every event once
	redelivered []schemas.ScoreRecord // some of them again, as a re-delivery writes them
	versions    []RuleVersion
	runs        []BacktestRun
	decisions   []schemas.Decision // the decision log: verdicts served before some of the events
	labels      []schemas.Label
}

// fixtureRule is a rule of the fixture's pack: each rule always has the same tag and level, as
// in a real pack (the queries take any(tag) per rule).
type fixtureRule struct {
	tag   string
	level int
	mode  string
}

var fixtureRules = map[string]fixtureRule{
	"phone_velocity_observe": {"phone_velocity", 300, "enforce"},
	"repeated_failures":      {"repeated_failures", 300, "enforce"},
	"idc_proxy_ip":           {"idc_proxy_ip", 600, "enforce"},
	"prefix_burst":           {"prefix_burst", 600, "enforce"},
	"phones_per_device":      {"phones_per_device", 600, "enforce"},
	"phones_per_ip_block":    {"phones_per_ip", 900, "enforce"},
	"odd_hour":               {"odd_hour", 300, "shadow"},
	"prefix_burst_strict":    {"prefix_burst", 900, "shadow"},
}

// newCrossFixture builds the dataset for a clock pinned at now (the queries' now()): nine days of
// ordinary traffic over three apps and three carriers, and the attacks the analyst queries look
// for — a burst through one block of consecutive numbers (连号) from a datacenter /24, a modem
// pool (one device, many numbers), a spike of one carrier's failure code in the last hour, and
// overseas IPv6 proxies — with enforced and shadow rule hits, two rules versions, two backtest
// runs, and a re-delivered part. The same now gives the same data.
func newCrossFixture(now time.Time) crossFixture {
	rng := rand.New(rand.NewPCG(20261205, 18))
	hasher := schemas.NewPhoneHasher([]byte("cross-version fixture key"))
	const v1, v2 = "v1-5f2c9a", "v2-8d41e0"
	var fx crossFixture
	n := 0
	add := func(ts time.Time, app, phone, ip, carrier, device string, geo schemas.Geo, fail string, rules ...string) {
		n++
		r := schemas.ScoreRecord{
			EventID:      fmt.Sprintf("ev-%05d", n),
			TS:           ts.UTC().Truncate(time.Second),
			AppID:        app,
			Flow:         []string{schemas.FlowOneClickLogin, schemas.FlowOneClickLogin, "number_verify", "h5_quick_login"}[n%4],
			PhoneHash:    hasher.Hex(phone),
			PhoneMasked:  schemas.MaskPhone(phone),
			PhoneSegment: schemas.PhoneSegment(phone),
			IP:           ip,
			Carrier:      carrier,
			Platform:     []string{"android", "ios", "harmony", "h5", "android"}[n%5],
			DeviceID:     device,
			Outcome:      schemas.OutcomeSuccess,
			Geo:          geo,
			RulesVersion: v2,
			Tags:         []string{},
			Detail:       map[string]schemas.TagDetail{},
		}
		if fail != "" {
			r.Outcome, r.ErrorCode = schemas.OutcomeFail, fail
		}
		if n%3 == 0 {
			r.TokenDigest = fmt.Sprintf("%064x", n)
		}
		if ts.Before(now.Add(-4 * 24 * time.Hour)) {
			r.RulesVersion = v1
		}
		for _, name := range rules {
			fr := fixtureRules[name]
			reason := fmt.Sprintf("%s: %d in 10 min", fr.tag, 5+n%20)
			r.Hits = append(r.Hits, schemas.RuleHit{Rule: name, Tag: fr.tag, Score: fr.level, Mode: fr.mode, Reason: reason})
			if fr.mode == "enforce" {
				r.Score = max(r.Score, fr.level)
				if !slices.Contains(r.Tags, fr.tag) {
					r.Tags = append(r.Tags, fr.tag)
					r.Detail[fr.tag] = schemas.TagDetail{Score: fr.level, Reason: reason}
				}
			}
		}
		r.ScoredAt = r.TS.Add(2 * time.Second)
		fx.records = append(fx.records, r)
	}

	// Ordinary users: carrier NAT addresses, one device per number, a few failures.
	type carrierNet struct {
		carrier, prefix, failCode string
		segments                  []string
		geo                       schemas.Geo
	}
	nets := []carrierNet{
		{"CM", "117.136", "103911", []string{"1380013", "1390027", "1478830"}, schemas.Geo{Country: "CN", Province: "Guangdong", City: "Shenzhen", ASN: 9808, IPType: "mobile"}},
		{"CU", "112.96", "-40101", []string{"1860755", "1552010"}, schemas.Geo{Country: "CN", Province: "Beijing", City: "Beijing", ASN: 4837, IPType: "mobile"}},
		{"CT", "180.160", "-20005", []string{"1890215", "1330571"}, schemas.Geo{Country: "CN", Province: "Shanghai", City: "Shanghai", ASN: 4812, IPType: "broadband"}},
	}
	apps := []string{"app-a", "app-a", "app-b", "app-c"}
	const benign = 2400
	span := 9 * 24 * time.Hour
	for i := range benign {
		cn := nets[rng.IntN(len(nets))]
		seg := cn.segments[rng.IntN(len(cn.segments))]
		user := rng.IntN(300)
		phone := fmt.Sprintf("%s%04d", seg, user)
		ts := now.Add(-span + time.Duration(i)*span/benign + time.Duration(rng.IntN(200))*time.Second)
		ip := fmt.Sprintf("%s.%d.%d", cn.prefix, user%24, 1+user%9)
		fail := ""
		var rules []string
		if rng.IntN(100) < 6 {
			fail = cn.failCode
		}
		switch x := rng.IntN(100); {
		case x < 4:
			rules = append(rules, "phone_velocity_observe")
		case x < 6 && fail != "":
			rules = append(rules, "repeated_failures")
		}
		if h := ts.Hour(); h >= 17 && h < 21 { // 01:00-05:00 China time
			rules = append(rules, "odd_hour")
		}
		add(ts, apps[rng.IntN(len(apps))], phone, ip, cn.carrier, fmt.Sprintf("dev-%s-%d", seg, user), cn.geo, fail, rules...)
	}

	// 连号: 160 consecutive numbers of one block in the 85 minutes before now, from four
	// addresses of one datacenter /24, eight devices.
	idc := schemas.Geo{Country: "CN", Province: "Zhejiang", City: "Hangzhou", ASN: 37963, IPType: "idc"}
	for i := range 160 {
		ts := now.Add(-85*time.Minute + time.Duration(i)*30*time.Second)
		fail := ""
		if i%5 < 2 {
			fail = "103911"
		}
		rules := []string{"idc_proxy_ip", "prefix_burst_strict"}
		if i >= 20 {
			rules = append(rules, "prefix_burst")
		}
		if i >= 100 {
			rules = append(rules, "phones_per_ip_block")
		}
		add(ts, "app-b", fmt.Sprintf("1380099%04d", i), fmt.Sprintf("47.92.10.%d", 10+i%4), "CM", fmt.Sprintf("burst-%d", i%8), idc, fail, rules...)
	}

	// 猫池: one modem pool, 70 numbers of an MVNO block, over the last 20 hours.
	for i := range 90 {
		ts := now.Add(-20*time.Hour + time.Duration(i)*13*time.Minute)
		var rules []string
		if i >= 10 {
			rules = append(rules, "phones_per_device")
		}
		phone := fmt.Sprintf("1710123%04d", rng.IntN(70)*37%10000)
		add(ts, "app-c", phone, fmt.Sprintf("223.104.3.%d", 1+i%3), "CU", "modem-pool-7",
			schemas.Geo{Country: "CN", Province: "Guangdong", City: "Guangzhou", ASN: 9808, IPType: "mobile"}, "", rules...)
	}

	// A CU gateway problem: -40101 failures across apps in the current and the previous hour.
	for i := range 45 {
		ts := now.Add(-85*time.Minute + time.Duration(i)*110*time.Second)
		phone := fmt.Sprintf("1860755%04d", 5000+i)
		add(ts, apps[i%len(apps)], phone, fmt.Sprintf("112.96.%d.%d", 30+i%5, 1+i%7), "CU", fmt.Sprintf("dev-cu-%d", i),
			nets[1].geo, "-40101")
	}

	// Overseas proxies over IPv6, one network.
	for i := range 30 {
		ts := now.Add(-30*time.Hour + time.Duration(i)*47*time.Minute)
		phone := fmt.Sprintf("1390027%04d", 7000+i)
		add(ts, "app-a", phone, fmt.Sprintf("2001:db8:85a3:%x::%x", i%2, 10+i), "CM", fmt.Sprintf("dev-v6-%d", i),
			schemas.Geo{Country: "US", Province: "California", City: "San Jose", ASN: 64500, IPType: "idc"}, "", "idc_proxy_ip")
	}

	// Edge cases: tenants named in Chinese and with a quote and a backslash, text with emoji,
	// quotes and backslashes, empty carrier, platform and device, IPv6 loopback and link-local
	// addresses, the largest AS number, and events one second either side of a China midnight
	// (16:00 UTC, where day_cn changes) and of UTC hours.
	odd := []string{"应用-甲", `shop.o'neil\x`}
	chinaMidnight := now.Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour).Add(16 * time.Hour)
	for i := range 24 {
		base := chinaMidnight
		if i >= 12 {
			base = now.Truncate(time.Hour).Add(-time.Duration(i) * time.Hour)
		}
		ts := base.Add(time.Duration(i%3-1) * time.Second)
		ip := []string{"::1", "fe80::1", "198.51.100.7", "2001:db8:ffff::1"}[i%4]
		geo := schemas.Geo{Country: []string{"CN", "", "BR", "DE"}[i%4], Province: []string{"广东", "", "São Paulo", "Baden-Württemberg"}[i%4],
			City: []string{"深圳", "", "São Paulo", "Zürich"}[i%4], ASN: []uint32{math.MaxUint32, 0, 28573, 3320}[i%4], IPType: []string{"idc", "", "mobile", "broadband"}[i%4]}
		device := []string{"", `设备🙂 "q" \ x`, "dev-Ω", ""}[i%4]
		rules := []string{"idc_proxy_ip"}
		if i%2 == 1 {
			rules = append(rules, "phones_per_ip_block", "odd_hour")
		}
		fail := ""
		if i%3 == 0 {
			fail = "错误-1"
		}
		add(ts, odd[i%2], fmt.Sprintf("1770000%04d", i), ip, []string{"", "CM", "CU", "CT"}[i%4], device, geo, fail, rules...)
		fx.records[len(fx.records)-1].Platform = []string{"", "web", "ios", ""}[i%4]
	}

	// The decision log: every fourth event followed a served verdict and carries its id; a few
	// verdicts have no event (abandoned attempts). Some are labelled, one label corrected.
	for i := 0; i < len(fx.records); i += 4 {
		r := &fx.records[i]
		id := fmt.Sprintf("dec-%05d", i)
		if i%20 != 0 {
			r.DecisionID = id
		}
		hits := append([]schemas.RuleHit{}, r.Hits...)
		if i%3 == 0 {
			hits = append(hits, schemas.RuleHit{Rule: "mvno_tag", Tag: "mvno_segment", Mode: "tag", Reason: "an MVNO segment"})
		}
		fx.decisions = append(fx.decisions, schemas.Decision{
			DecisionID: id, TS: r.TS.Add(-time.Second), AppID: r.AppID, Flow: r.Flow,
			PhoneHash: r.PhoneHash, PhoneMasked: r.PhoneMasked, PhoneSegment: r.PhoneSegment,
			IP: r.IP, Carrier: r.Carrier, Platform: r.Platform, DeviceID: r.DeviceID, TokenDigest: r.TokenDigest, ExID: r.ExID,
			Score: r.Score, Tags: r.Tags, Detail: r.Detail, Hits: hits, RulesVersion: r.RulesVersion,
			Node: []string{"api-1", "api-2"}[i%2], LatencyUS: int64(80 + i%400),
		})
		switch i % 12 {
		case 0:
			fx.labels = append(fx.labels, schemas.Label{AppID: r.AppID, DecisionID: id, Label: schemas.LabelFraud, LabeledBy: "api:lead", LabeledAt: r.TS.Add(time.Hour)})
			// Now and then the attempt is tried again after the same verdict: two events carry
			// the decision's id, and its label counts for both.
			if i%24 == 12 && i+1 < len(fx.records) && fx.records[i+1].AppID == r.AppID {
				fx.records[i+1].DecisionID = id
			}
		case 4:
			fx.labels = append(fx.labels, schemas.Label{AppID: r.AppID, EventID: r.EventID, Label: schemas.LabelLegit, Note: "known user", LabeledBy: "cli:ana", LabeledAt: r.TS.Add(time.Hour)},
				schemas.Label{AppID: r.AppID, EventID: r.EventID, Label: schemas.LabelFraud, Note: "corrected", LabeledBy: "cli:ana", LabeledAt: r.TS.Add(2 * time.Hour)})
		}
	}

	fx.decisions[1].LatencyUS = 1 << 40 // beyond UInt32: stored as its largest value

	// Re-deliveries: the archiver writes some records again.
	for i := 0; i < len(fx.records); i += 9 {
		fx.redelivered = append(fx.redelivered, fx.records[i])
	}

	fx.versions = []RuleVersion{
		{Version: v1, Name: "default", LoadedBy: "startup", Source: "embedded default", LoadedAt: now.Add(-10 * 24 * time.Hour), RuleCount: 7, Content: "name: default\n# v1\n"},
		{Version: v2, Name: "default", LoadedBy: "hot-reload", Source: "/etc/riskflow/rules.yaml", LoadedAt: now.Add(-4 * 24 * time.Hour), RuleCount: 8, Content: "name: default\n# v2: it's \\ new\n"},
	}
	p1, r1, third, tiny := 0.875, 0.5, 1.0/3, 5e-324
	fx.runs = []BacktestRun{
		{
			RunID: "bt-cross-1", StartedAt: now.Add(-3 * time.Hour), FinishedAt: now.Add(-3*time.Hour + 41*time.Second),
			From: now.Add(-7 * 24 * time.Hour), To: now.Add(-3 * time.Hour),
			CurrentName: "default", CurrentVersion: v1, CandidateName: "default", CandidateVersion: v2,
			Events: 2100, WarmUpEvents: 120, SkippedEvents: 2, ChangedEvents: 37, EventsPerSec: 51219.5,
			TransitionFrom: []uint16{0, 0, 300, 600}, TransitionTo: []uint16{0, 600, 300, 900}, TransitionCount: []uint64{2040, 30, 23, 7},
			TransitionsJSON: `[{"from":0,"to":600,"n":30}]`,
			RuleIDs:         []string{"prefix_burst", "odd_hour", "phones_per_ip_block"}, RuleCurrentHits: []uint64{0, 40, 5},
			RuleCandidateHits: []uint64{30, 40, 12}, RuleGained: []uint64{30, 0, 7}, RuleLost: []uint64{0, 0, 0},
			FlagAt: 600, Labeled: 300, CurrentPrecision: &p1, CurrentRecall: &r1,
		},
		{
			RunID: "bt-cross-2", StartedAt: now.Add(-1 * time.Hour), FinishedAt: now.Add(-1*time.Hour + 9*time.Second),
			From: now.Add(-24 * time.Hour), To: now.Add(-1 * time.Hour),
			CurrentName: "default", CurrentVersion: v2, CandidateName: "strict", CandidateVersion: "v3-0c77aa",
			Events: 410, ChangedEvents: 0, EventsPerSec: 45555.25,
			TransitionFrom: []uint16{0}, TransitionTo: []uint16{0}, TransitionCount: []uint64{410},
		},
		{ // the largest counts and the extremes of a float
			RunID: "bt-cross-3-大", StartedAt: now.Add(-2 * time.Hour), FinishedAt: now.Add(-2 * time.Hour),
			From: now.Add(-48 * time.Hour), To: now.Add(-47 * time.Hour),
			CurrentName: "default", CurrentVersion: v2, CandidateName: `o'neil \ 🙂`, CandidateVersion: "v4",
			Events: math.MaxUint64, WarmUpEvents: math.MaxUint64 - 1, ChangedEvents: 1 << 53, EventsPerSec: math.MaxFloat64,
			TransitionFrom: []uint16{900, 0}, TransitionTo: []uint16{0, 900}, TransitionCount: []uint64{math.MaxUint64, 1},
			RuleIDs: []string{"规则"}, RuleCurrentHits: []uint64{math.MaxUint64}, RuleCandidateHits: []uint64{0}, RuleGained: []uint64{0}, RuleLost: []uint64{math.MaxUint64},
			FlagAt: 900, Labeled: 3, CurrentPrecision: &third, CurrentRecall: &tiny,
		},
	}
	return fx
}

// The kinds of steps of a plan.
const (
	stepMigration = "migration" // a migration statement: Store.Migrate sends it to 18.16
	stepAgain     = "again"     // a migration statement sent again (a migrator that died before recording it, or a second one racing): it succeeds or the server answers what Store.Migrate takes for "already in effect"
	stepInsert    = "insert"    // an INSERT with rows: chsink's writers send it to 18.16
	stepExec      = "exec"      // a statement run for its effect on both (backfill)
	stepCompare   = "compare"   // a SELECT whose results must be the same on both
	stepRuns      = "runs"      // a SELECT that must run on both; its results depend on the clock
	stepExpect    = "expect"    // a SELECT with a known answer per server (storage that differs by design)
)

// xstep is one statement of the plan. Name, SQL, Data and Result go to the chDB runner.
type xstep struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
	Data string `json:"data,omitempty"`
	// DataFile names a file whose content follows the statement (a large INSERT's rows).
	DataFile string `json:"data_file,omitempty"`
	Result   bool   `json:"result"`

	kind    string
	ordered bool              // compare rows in order (the statement orders them totally)
	expect  func(bool) string // stepExpect: the answer on a server with (true) or without the conditional migrations
}

// crossPlan is every statement, in the order a real deployment sends them, for one database on
// a server of release version, with the clock pinned at now where a statement reads it.
type crossPlan struct {
	db         string
	now        time.Time
	version    chschema.Version
	steps      []xstep
	migrations []string // names of the migrations applied
	current    bool     // the version-conditional migrations apply
}

// pinNow replaces the clock functions with the pinned time, so two servers that run a statement
// seconds apart compute the same windows.
func pinNow(sql string, now time.Time) string {
	t := "toDateTime(" + strconv.FormatInt(now.Unix(), 10) + ")"
	sql = regexp.MustCompile(`\bnow\(\)`).ReplaceAllLiteralString(sql, t)
	return regexp.MustCompile(`\btoday\(\)`).ReplaceAllLiteralString(sql, "toDate("+t+")")
}

func buildCrossPlan(db string, now time.Time, version chschema.Version, fx crossFixture) (*crossPlan, error) {
	p, migs, err := newCrossPlan(db, now, version)
	if err != nil {
		return nil, err
	}
	if err := p.addFixture(fx); err != nil {
		return nil, err
	}
	if err := p.addBackfill(); err != nil {
		return nil, err
	}
	err = p.addReads(migs, readParams{
		ruleVersion: fx.versions[1].Version,
		// An IPv6 address reads its /56 (the overseas proxies' 2001:db8:85a3::/56).
		lookups: []LookupKey{{PhoneHash: fx.records[0].PhoneHash}, {IP: fx.records[len(fx.records)-1].IP}, {DeviceID: fx.records[4].DeviceID},
			{IP: "2001:db8:85a3:1::1"}},
		lookupApps: []string{fx.records[0].AppID, fx.records[len(fx.records)-1].AppID, fx.records[4].AppID},
		app:        "app-b",
		scoreKeys:  scoreKeysOf(fx.records[:5]),
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newCrossPlan starts a plan with the migrator's statements for a server of release version: its
// questions, the migrations meant for that release, its records. It returns every migration.
func newCrossPlan(db string, now time.Time, version chschema.Version) (*crossPlan, []migration, error) {
	p := &crossPlan{db: db, now: now, version: version}
	add := func(s xstep) { p.steps = append(p.steps, s) }
	compare := func(name, sql string, ordered bool) {
		add(xstep{Name: name, SQL: sql, Result: true, kind: stepCompare, ordered: ordered})
	}

	// The migrator: its questions, the migrations for this release, its records.
	migs, err := loadMigrations(chschema.Migrations, "migrations", db)
	if err != nil {
		return nil, nil, err
	}
	add(xstep{Name: "migrate: server version", SQL: serverVersionSQL, Result: true, kind: stepRuns})
	// (before: 18.16 gets the statements through Store.Migrate, so the answer is compared after)
	add(xstep{Name: "migrate: schema_migrations exists (before)", SQL: migrationsTableExistsSQL(db), Result: true, kind: stepRuns})
	apply, skipped := pendingMigrations(migs, nil, version)
	p.current = len(skipped) == 0
	var recRows [][]any
	for _, m := range apply {
		p.migrations = append(p.migrations, m.name)
		for i, st := range m.statements {
			add(xstep{Name: fmt.Sprintf("migration %s #%d", m.name, i+1), SQL: st, kind: stepMigration})
		}
		recRows = append(recRows, []any{m.id, m.name, now})
	}
	if err := p.addInsert("migrate: record", migrationsTable, schemaMigrationsColumns, recRows); err != nil {
		return nil, nil, err
	}
	compare("migrate: schema_migrations exists (after)", migrationsTableExistsSQL(db), true)
	add(xstep{Name: "migrate: the tables there (a dropped one is migrated again)", SQL: tableNamesSQL(db) + " ORDER BY name", Result: true, kind: stepRuns})
	add(xstep{Name: "migrate: applied ids", SQL: appliedMigrationsSQL(db) + " ORDER BY id", Result: true, kind: stepExpect,
		expect: func(current bool) string {
			var ids []string
			for _, m := range migs {
				if m.requires == nil || current {
					ids = append(ids, strconv.Itoa(int(m.id)))
				}
			}
			return strings.Join(ids, "\n") + "\n"
		}})
	for _, m := range apply {
		for i, st := range m.statements {
			add(xstep{Name: fmt.Sprintf("migration %s #%d again", m.name, i+1), SQL: st, kind: stepAgain})
		}
	}
	return p, migs, nil
}

// addUpgrade adds what the migrator does once the server of a plan begun by newCrossPlan has been
// upgraded to release v: the migrations v applies that the older release skipped, and their
// records; the migrator's answer of applied ids moves after them.
func (p *crossPlan) addUpgrade(migs []migration, v chschema.Version) error {
	applied := map[uint32]bool{}
	for _, m := range migs {
		if slices.Contains(p.migrations, m.name) {
			applied[m.id] = true
		}
	}
	apply, skipped := pendingMigrations(migs, applied, v)
	p.version, p.current = v, len(skipped) == 0
	if len(apply) == 0 {
		return nil
	}
	var ids xstep
	p.steps = slices.DeleteFunc(p.steps, func(s xstep) bool {
		if s.Name == "migrate: applied ids" {
			ids = s
			return true
		}
		return false
	})
	var recRows [][]any
	for _, m := range apply {
		p.migrations = append(p.migrations, m.name)
		for i, st := range m.statements {
			p.steps = append(p.steps, xstep{Name: fmt.Sprintf("upgrade: migration %s #%d", m.name, i+1), SQL: st, kind: stepMigration})
		}
		recRows = append(recRows, []any{m.id, m.name, p.now})
	}
	if err := p.addInsert("upgrade: record", migrationsTable, schemaMigrationsColumns, recRows); err != nil {
		return err
	}
	p.steps = append(p.steps, ids)
	return nil
}

// addFixture adds the archiver's writes of fx: each batch into verify_events, then risk_scores;
// rule versions; the decision log; labels; backtest runs.
func (p *crossPlan) addFixture(fx crossFixture) error {
	now := p.now
	for _, batch := range []struct {
		name string
		recs []schemas.ScoreRecord
	}{{"batch", fx.records}, {"re-delivered batch", fx.redelivered}} {
		var ev, sc [][]any
		for i := range batch.recs {
			if reason := checkRecord(&batch.recs[i]); reason != "" {
				return fmt.Errorf("fixture record %d: %s", i, reason)
			}
			ev = append(ev, verifyEventRow(&batch.recs[i]))
			row, err := riskScoreRow(&batch.recs[i])
			if err != nil {
				return err
			}
			sc = append(sc, row)
		}
		if err := p.addInsert("archiver "+batch.name, "verify_events", verifyEventsColumns, ev); err != nil {
			return err
		}
		if err := p.addInsert("archiver "+batch.name, "risk_scores", riskScoresColumns, sc); err != nil {
			return err
		}
	}
	for _, v := range fx.versions {
		row, err := ruleVersionRow(v, now)
		if err != nil {
			return err
		}
		if err := p.addInsert("rule version "+v.Version, "rule_versions", ruleVersionsColumns, [][]any{row}); err != nil {
			return err
		}
	}
	var decisionRows, labelRows [][]any
	for i := range fx.decisions {
		if reason := checkDecision(&fx.decisions[i]); reason != "" {
			return fmt.Errorf("fixture decision %d: %s", i, reason)
		}
		row, err := decisionRow(&fx.decisions[i])
		if err != nil {
			return err
		}
		decisionRows = append(decisionRows, row)
	}
	if err := p.addInsert("decision log", "risk_decisions", riskDecisionsColumns, decisionRows); err != nil {
		return err
	}
	for _, l := range fx.labels {
		kind, id := l.Target()
		labelRows = append(labelRows, []any{l.AppID, kind, id, l.Label, l.Note, l.LabeledBy, l.LabeledAt.UTC()})
	}
	if err := p.addInsert("labels", "labels", labelsColumns, labelRows); err != nil {
		return err
	}
	for _, r := range fx.runs {
		row, err := backtestRunRow(&r)
		if err != nil {
			return err
		}
		if err := p.addInsert("backtest run "+r.RunID, "backtest_runs", backtestRunsColumns, [][]any{row}); err != nil {
			return err
		}
	}

	return nil
}

// addBackfill adds the backfill, run on both servers.
func (p *crossPlan) addBackfill() error {
	// The backfill, over rows the views have already counted: it must count nothing twice.
	files, err := fs.Glob(chschema.Backfill, "backfill/*.sql")
	if err != nil || len(files) == 0 {
		return fmt.Errorf("backfill files: %v %v", files, err)
	}
	for _, f := range files {
		stmts, err := sqlFile(chschema.Backfill, f, p.db)
		if err != nil {
			return err
		}
		for i, st := range stmts {
			p.steps = append(p.steps, xstep{Name: fmt.Sprintf("backfill %s #%d", path.Base(f), i+1), SQL: st, kind: stepExec})
		}
	}

	return nil
}

// readParams are the values of the data that the parameterised reads ask about.
type readParams struct {
	ruleVersion string      // a recorded rules version
	lookups     []LookupKey // keys for riskflow lookup
	lookupApps  []string    // an app each key has rows in, for lookup --app (none: the paged read only)
	app         string      // an app for the per-app reads
	scoreKeys   []EventKey  // events whose verdicts the console's investigate page reads
}

// addReads adds every read riskflow ships or sends: what is stored, the backtest's, the rule-pack
// service's, lookup's, rules report's and the console's reads, the analyst pack, the statements
// cmd/riskflow builds, and the dashboards' panels.
func (p *crossPlan) addReads(migs []migration, rp readParams) error {
	db, now := p.db, p.now
	add := func(s xstep) { p.steps = append(p.steps, s) }
	compare := func(name, sql string, ordered bool) {
		add(xstep{Name: name, SQL: sql, Result: true, kind: stepCompare, ordered: ordered})
	}

	// What is stored: every table, every view's table, in full.
	for _, d := range []struct{ table, cols, order string }{
		{"verify_events", strings.Join(verifyEventsColumns, ", "), "app_id, event_id"},
		{"risk_scores", strings.Join(riskScoresColumns, ", "), "app_id, event_id"},
		{"rule_versions", strings.Join(ruleVersionsColumns, ", "), "version"},
		{"backtest_runs", strings.Join(backtestRunsColumns, ", "), "run_id"},
		{"risk_decisions", strings.Join(riskDecisionsColumns, ", "), "app_id, decision_id"},
		{"labels", strings.Join(labelsColumns, ", "), "app_id, target, target_id"},
		{"schema_migrations", "id, name", "id"},
	} {
		cond := ""
		if d.table == migrationsTable {
			// the version-conditional ones are recorded only where they apply ("migrate: applied ids")
			var common []string
			for _, m := range migs {
				if m.requires == nil {
					common = append(common, strconv.Itoa(int(m.id)))
				}
			}
			cond = " WHERE id IN (" + strings.Join(common, ", ") + ")"
		}
		compare("stored: "+d.table, fmt.Sprintf("SELECT %s FROM %s.%s FINAL%s ORDER BY %s", d.cols, db, d.table, cond, d.order), true)
	}
	for _, h := range []struct{ table, keys, counters string }{
		{"verify_events_hourly", "hour, app_id, flow, carrier, outcome, error_code", "uniqMerge(events), uniqMerge(phones), uniqMerge(ips), uniqIfMerge(devices)"},
		{"risk_scores_hourly", "hour, app_id, flow, carrier, rules_version", "uniqMerge(events), uniqMerge(phones), uniqIfMerge(score_0), uniqIfMerge(score_300), uniqIfMerge(score_600), uniqIfMerge(score_900)"},
		{"rule_hits_hourly", "hour, app_id, flow, carrier, rule, tag, mode", "uniqMerge(events), uniqMerge(phones)"},
	} {
		compare("stored: "+h.table, fmt.Sprintf("SELECT %s, %s FROM %s.%s GROUP BY %s ORDER BY %s", h.keys, h.counters, db, h.table, h.keys, h.keys), true)
	}
	// How it is stored: LowCardinality columns and TTLs where the conditional migrations apply.
	add(xstep{Name: "storage: LowCardinality columns", Result: true, kind: stepExpect,
		// Tables only: a view stores nothing, and its columns are its SELECT's types, which depend
		// on whether it was created before or after 0010 (0015 recreates the hourly views).
		SQL: fmt.Sprintf("SELECT table, name FROM system.columns WHERE database = '%s' AND type LIKE '%%LowCardinality%%' "+
			"AND table IN (SELECT name FROM system.tables WHERE database = '%s' AND engine != 'MaterializedView') ORDER BY table, name", db, db),
		expect: func(current bool) string {
			if !current {
				return ""
			}
			return "risk_scores\tcarrier\nrisk_scores\tflow\nrisk_scores\thit_modes\nrisk_scores\thit_rules\nrisk_scores\thit_tags\nrisk_scores\trules_version\nrisk_scores\tshadow_tags\nrisk_scores\ttags\n" +
				"verify_events\tcarrier\nverify_events\tcity\nverify_events\tcountry\nverify_events\terror_code\nverify_events\tflow\nverify_events\tip_type\nverify_events\toutcome\nverify_events\tplatform\nverify_events\tprovince\n"
		}})
	// (the periods SCHEMA.md and README state: events and verdicts 400 days, hourly views 3 years)
	add(xstep{Name: "storage: tables with a TTL", Result: true, kind: stepExpect,
		SQL: fmt.Sprintf("SELECT name, extract(engine_full, ' TTL (.*) SETTINGS ') FROM system.tables WHERE database = '%s' AND engine_full LIKE '%% TTL %%' ORDER BY name", db),
		expect: func(current bool) string {
			if !current {
				return ""
			}
			return "risk_decisions\tts + toIntervalDay(400)\nrisk_scores\tts + toIntervalDay(400)\nrisk_scores_hourly\thour + toIntervalYear(3)\nrule_hits_hourly\thour + toIntervalYear(3)\n" +
				"verify_events\tts + toIntervalDay(400)\nverify_events_hourly\thour + toIntervalYear(3)\n"
		}})

	// The backtest's reads: ReadEvents' list of the days with events, and its chunks over the
	// fixture's days, in replay order.
	day := now.Truncate(24 * time.Hour)
	compare("backtest days", eventDaysSQL(db, day.Add(-20*24*time.Hour), now.Add(time.Hour)), true)
	for lo := day.Add(-10 * 24 * time.Hour); lo.Before(now.Add(time.Hour)); lo = lo.Add(24 * time.Hour) {
		compare("backtest read "+lo.Format("2006-01-02"), readChunkSQL(db, lo, lo.Add(24*time.Hour), rowKey{}), true)
	}
	// A read resumed after a row (ClickHouse restarted mid-read): the rest of the chunk, in order.
	compare("backtest read resumed", readChunkSQL(db, day.Add(-10*24*time.Hour), now.Add(time.Hour),
		rowKey{ts: now.Add(-3 * time.Hour).Unix(), eventID: "m", appID: "a", set: true}), true)

	// The rule-pack service's reads: the recorded versions, and one with its content.
	compare("rule versions", ruleVersionsSQL(db, 1000), true)
	compare("rule version "+rp.ruleVersion, ruleVersionSQL(db, rp.ruleVersion), true)

	// The backtest's labels and riskflow lookup's reads, for a phone, an address and a device.
	for i, q := range labelsSQL(db) {
		compare(fmt.Sprintf("backtest labels #%d", i+1), q, true)
	}
	for i, k := range rp.lookups {
		// All of the range, its second page in a range with an end (--until, --offset: LIMIT
		// offset, count), and one app's rows (--app).
		since := now.Add(-10 * 24 * time.Hour)
		ranges := []LookupRange{{Since: since}}
		if k.DeviceID == "" {
			// A second page: the fixture's phone and address have more than one row, its device one.
			ranges = append(ranges, LookupRange{Since: since, Until: now.Add(time.Hour), Offset: 1})
		}
		if i < len(rp.lookupApps) {
			ranges = append(ranges, LookupRange{AppID: rp.lookupApps[i], Since: since})
		}
		for _, r := range ranges {
			aq, dq, err := LookupSQL(db, k, r, 50)
			if err != nil {
				return err
			}
			compare(fmt.Sprintf("lookup %+v %+v attempts", k, r), aq, true)
			compare(fmt.Sprintf("lookup %+v %+v decisions", k, r), dq, true)
		}
	}
	sq, err := ScoresSQL(db, rp.scoreKeys, now.Add(-10*24*time.Hour))
	if err != nil {
		return err
	}
	compare("lookup verdicts", sq, false)

	// riskflow rules report, all apps and one app, over a day and over a week.
	end := now.Truncate(time.Hour).Add(time.Hour)
	for _, w := range []time.Duration{24 * time.Hour, 4 * 24 * time.Hour} {
		for _, app := range []string{"", rp.app} {
			totals, hits, err := RulesReportSQL(db, end.Add(-w), end.Add(-2*w), end, app)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("rules report %s %q", w, app)
			compare(name+" totals", totals, true)
			compare(name+" hits", hits+" ORDER BY rule, mode, hour, in_window", true)
		}
	}

	// The console's reads (console.go): the overview over a day and a week, all apps and one; the
	// app list (its placeholder bound as the driver binds it, to a literal).
	for _, w := range []time.Duration{24 * time.Hour, 7 * 24 * time.Hour} {
		for _, app := range []string{"", rp.app} {
			where := "hour >= " + dateTime(end.Add(-w)) + " AND hour < " + dateTime(end)
			if app != "" {
				where += " AND app_id = " + quoteString(app)
			}
			name := fmt.Sprintf("console %s %q", w, app)
			compare(name+" score mix", ScoreMixSQL(db, where), true)
			compare(name+" tags per hour", TagHoursSQL(db, where), true)
			compare(name+" rule hits", RuleHitsSQL(db, where), true)
			compare(name+" rule hits per hour", RuleHourHitsSQL(db, where), true)
		}
	}
	bind := func(sql string, args ...string) string {
		for _, a := range args {
			sql = strings.Replace(sql, "?", a, 1)
		}
		return sql
	}
	compare("console apps", bind(AppsSQL(db), dateTime(end.Add(-30*24*time.Hour))), true)

	// The analyst pack, as shipped (runs: its windows follow the clock) and on the pinned clock.
	queries, err := fs.Glob(chschema.Queries, "queries/*.sql")
	if err != nil || len(queries) == 0 {
		return fmt.Errorf("query files: %v %v", queries, err)
	}
	for _, f := range queries {
		stmts, err := sqlFile(chschema.Queries, f, db)
		if err != nil {
			return err
		}
		if len(stmts) != 1 {
			return fmt.Errorf("%s: %d statements", f, len(stmts))
		}
		name := "query " + strings.TrimSuffix(path.Base(f), ".sql")
		add(xstep{Name: name + " (as shipped)", SQL: stmts[0], Result: true, kind: stepRuns})
		compare(name, pinNow(stmts[0], now), false)
	}

	// The statements cmd/riskflow builds itself (riskflow demo's questions).
	cmdSQL, err := commandSQL(filepath.Join("..", "..", "cmd", "riskflow"), db)
	if err != nil {
		return err
	}
	for _, c := range cmdSQL {
		add(xstep{Name: c.name + " (as shipped)", SQL: c.sql, Result: true, kind: stepRuns})
		compare(c.name, pinNow(c.sql, now), false)
	}

	// The SELECTs SCHEMA.md shows as examples (indented code blocks), as an analyst copies them.
	docs, err := docSQL(filepath.Join("..", "..", "deploy", "clickhouse", "SCHEMA.md"), db)
	if err != nil {
		return err
	}
	for _, d := range docs {
		add(xstep{Name: d.name + " (as shipped)", SQL: d.sql, Result: true, kind: stepRuns})
		compare(d.name, pinNow(d.sql, now), false)
	}

	// Dashboard panels on the ClickHouse datasource, over the last 7 days of the pinned clock.
	panels, err := grafana.ClickHousePanels()
	if err != nil {
		return err
	}
	for _, pn := range panels {
		sql, err := grafana.ExpandMacros(pn.SQL, now.Add(-7*24*time.Hour), now, time.Hour)
		if err != nil {
			return fmt.Errorf("%s: %w", pn.Name(), err)
		}
		sql = regexp.MustCompile(`\briskflow\.`).ReplaceAllLiteralString(sql, db+".")
		compare("panel "+pn.Name(), pinNow(sql, now), false)
	}
	return nil
}

// addInsert adds the INSERT chsink sends for table, with rows as the chDB runner loads them
// (JSONEachRow after the statement); the 18.16 side sends the same statement through the
// driver, with the same rows.
func (p *crossPlan) addInsert(name, table string, cols []string, rows [][]any) error {
	var b strings.Builder
	for _, row := range rows {
		if len(row) != len(cols) {
			return fmt.Errorf("%s: %d values for %d columns", table, len(row), len(cols))
		}
		obj := make(map[string]any, len(cols))
		for i, c := range cols {
			obj[c] = jsonValue(row[i])
		}
		line, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	p.steps = append(p.steps, xstep{Name: "insert " + table + ": " + name, SQL: insertSQL(p.db, table, cols) + " FORMAT JSONEachRow",
		Data: b.String(), kind: stepInsert})
	return nil
}

// jsonValue is v as JSONEachRow reads it into the column the driver would fill with v.
func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	case *float64:
		if x == nil {
			return nil
		}
		return *x
	}
	return v
}

// sqlFile reads one file of SQL with the database name substituted, as the migrator does.
func sqlFile(fsys fs.FS, file, db string) ([]string, error) {
	src, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	stmts, err := splitSQL(string(src), db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return stmts, nil
}

type namedSQL struct{ name, sql string }

// docSQL returns the example SELECTs of a Markdown file: its indented code blocks (four spaces)
// that start with SELECT, with the database riskflow renamed db.
func docSQL(file, db string) ([]namedSQL, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []namedSQL
	var block []string
	start := 0
	flush := func() {
		if len(block) > 0 && strings.HasPrefix(block[0], "SELECT") {
			sql := regexp.MustCompile(`\briskflow\.`).ReplaceAllLiteralString(strings.Join(block, "\n"), db+".")
			out = append(out, namedSQL{fmt.Sprintf("%s line %d", filepath.Base(file), start), sql})
		}
		block = nil
	}
	for i, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "    "); ok && (len(block) > 0 || strings.TrimSpace(rest) != "") {
			if len(block) == 0 {
				start = i + 1
			}
			block = append(block, rest)
			continue
		}
		if strings.TrimSpace(line) == "" && len(block) > 0 {
			block = append(block, "")
			continue
		}
		flush()
	}
	flush()
	for i := range out {
		out[i].sql = strings.TrimSpace(out[i].sql)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no example SELECT", file)
	}
	return out, nil
}

// commandSQL finds the SQL that the non-test Go files of dir build as string concatenations
// (a literal that starts with SELECT, INSERT, ALTER, CREATE or OPTIMIZE, joined with + to
// more literals and the variable db, the database name), so the statements cmd/riskflow sends
// run here as they are written there. A statement built from anything else fails the test:
// move it into chsink (as RulesReportSQL) or teach this function.
func commandSQL(dir, db string) ([]namedSQL, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sqlStart := regexp.MustCompile(`^"(SELECT|INSERT|ALTER|CREATE|OPTIMIZE) `)
	var out []namedSQL
	var errs []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			var parts []ast.Expr
			switch x := n.(type) {
			case *ast.BinaryExpr:
				if x.Op != token.ADD {
					return true
				}
				parts = flattenAdd(x)
			case *ast.BasicLit:
				parts = []ast.Expr{x}
			default:
				return true
			}
			first, ok := parts[0].(*ast.BasicLit)
			if !ok || first.Kind != token.STRING || !sqlStart.MatchString(first.Value) {
				return true
			}
			where := fmt.Sprintf("%s:%d", filepath.Base(f), fset.Position(n.Pos()).Line)
			var b strings.Builder
			for _, part := range parts {
				switch x := part.(type) {
				case *ast.BasicLit:
					s, err := strconv.Unquote(x.Value)
					if err != nil || x.Kind != token.STRING {
						errs = append(errs, where+": not a string literal")
						return false
					}
					b.WriteString(s)
				case *ast.Ident:
					if x.Name != "db" {
						errs = append(errs, fmt.Sprintf("%s: SQL built with %s; only literals and db are understood", where, x.Name))
						return false
					}
					b.WriteString(db)
				default:
					errs = append(errs, where+": SQL built from an expression; only literals and db are understood")
					return false
				}
			}
			out = append(out, namedSQL{name: "cmd/riskflow/" + where, sql: b.String()})
			return false
		})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("SQL in %s the cross-version check cannot read:\n%s", dir, strings.Join(errs, "\n"))
	}
	return out, nil
}

func flattenAdd(e ast.Expr) []ast.Expr {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD {
		return append(flattenAdd(b.X), flattenAdd(b.Y)...)
	}
	if p, ok := e.(*ast.ParenExpr); ok {
		return flattenAdd(p.X)
	}
	return []ast.Expr{e}
}

// serverError is the exception in the error text of a ClickHouse server or chDB ("Code: 15.
// DB::Exception: Cannot add column ...", 18.16: "Code: 44, e.displayText() = DB::Exception: ..."),
// as the driver reports it to Store.Migrate; nil if the text holds none.
func serverError(text string) *clickhouse.Exception {
	m := regexp.MustCompile(`Code: (\d+)[.,] (?:e\.displayText\(\) = )?DB::Exception: (.*)`).FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	code, _ := strconv.Atoi(m[1])
	return &clickhouse.Exception{Code: int32(code), Message: m[2]}
}

// sameResults compares two TabSeparated outputs: rows in order when ordered, else as multisets;
// numbers that differ only in the last bits of a float (one release rounds 0.1 + 0.2 to
// 0.30000000000000004, another prints 0.3) are equal. It returns "" or what differs.
func sameResults(a, b string, ordered bool) string {
	return sameResultsWithin(a, b, ordered, 0)
}

// sameResultsWithin is sameResults where numbers within a relative difference rel are also equal
// (rel > 0: approximate counts, uniq's estimates above 65,536 distinct values, which releases
// compute differently from the same state).
func sameResultsWithin(a, b string, ordered bool, rel float64) string {
	ra, rb := rowsOf(a), rowsOf(b)
	if !ordered {
		slices.Sort(ra)
		slices.Sort(rb)
	}
	if len(ra) != len(rb) {
		return fmt.Sprintf("%d rows on one, %d on the other", len(ra), len(rb))
	}
	for i := range ra {
		if ra[i] == rb[i] {
			continue
		}
		fa, fb := strings.Split(ra[i], "\t"), strings.Split(rb[i], "\t")
		if len(fa) != len(fb) {
			return fmt.Sprintf("row %d:\n  %s\n  %s", i+1, ra[i], rb[i])
		}
		for j := range fa {
			if fa[j] != fb[j] && !closeNumbers(fa[j], fb[j]) && !withinRel(fa[j], fb[j], rel) {
				return fmt.Sprintf("row %d, column %d (%q vs %q):\n  %s\n  %s", i+1, j+1, fa[j], fb[j], ra[i], rb[i])
			}
		}
	}
	return ""
}

func rowsOf(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// withinRel reports whether a and b are numbers whose difference is at most rel of the larger.
func withinRel(a, b string, rel float64) bool {
	if rel <= 0 {
		return false
	}
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	return errA == nil && errB == nil && math.Abs(x-y) <= rel*math.Max(math.Abs(x), math.Abs(y))
}

func closeNumbers(a, b string) bool {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA != nil || errB != nil {
		return false
	}
	if math.Abs(x-y) <= 1e-9*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) {
		return true
	}
	// round(x, d) of an exact tie: ClickHouse 18.16 rounds a Float64 half away from zero
	// (round(3.125, 2) = 3.13), current releases round it to even (3.12). Two values printed with
	// the same d > 0 decimals that are one unit of the last decimal apart are that tie.
	d := decimals(a)
	if d == 0 || d != decimals(b) {
		return false
	}
	unit := math.Pow(10, -float64(d))
	return math.Abs(math.Abs(x-y)-unit) <= unit*1e-6
}

// decimals is how many digits follow the decimal point of a number as printed (0: none).
func decimals(s string) int {
	i := strings.IndexByte(s, '.')
	if i < 0 || strings.ContainsAny(s, "eE") {
		return 0
	}
	return len(s) - i - 1
}

// The plan covers what the brief promises, without a server.
func TestCrossVersionPlan(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 30, 0, 0, time.UTC)
	fx := newCrossFixture(now)
	if again := newCrossFixture(now); !slices.EqualFunc(fx.records, again.records, func(a, b schemas.ScoreRecord) bool {
		return a.EventID == b.EventID && a.PhoneHash == b.PhoneHash && a.TS.Equal(b.TS) && a.Score == b.Score
	}) {
		t.Error("the fixture is not deterministic")
	}
	if n := len(fx.records); n < 2000 || n > 5000 {
		t.Errorf("fixture has %d records", n)
	}
	for _, v := range []string{"18.16.1", "26.9.2.1"} {
		ver, _ := chschema.ParseVersion(v)
		p, err := buildCrossPlan("rf_plan", now, ver, fx)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, s := range p.steps {
			kinds[s.kind]++
			if strings.Contains(s.SQL, "riskflow") {
				t.Errorf("%s: database name not substituted:\n%s", s.Name, s.SQL)
			}
			if s.kind == stepCompare && regexp.MustCompile(`\bnow\(\)|\btoday\(\)|\$`).MatchString(s.SQL) {
				t.Errorf("%s: compared statement reads the clock or has a macro left:\n%s", s.Name, s.SQL)
			}
		}
		wantMigs := 14
		if p.current {
			wantMigs = 17
		}
		if len(p.migrations) != wantMigs || p.current != (v != "18.16.1") {
			t.Errorf("%s: migrations %q, current %v", v, p.migrations, p.current)
		}
		if kinds[stepInsert] != 12 || kinds[stepAgain] != kinds[stepMigration] || kinds[stepExec] != 3 || kinds[stepCompare] < 40 || kinds[stepRuns] < 8 || kinds[stepExpect] != 3 {
			t.Errorf("%s: steps by kind %v", v, kinds)
		}
	}
	// An upgraded server: the schema of 18.16, then the rest, recorded, before the applied ids.
	old, _ := chschema.ParseVersion("18.16.1")
	cur, _ := chschema.ParseVersion("26.9.2.1")
	up, migs, err := newCrossPlan("rf_up", now, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.addUpgrade(migs, cur); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range up.steps {
		if s.kind == stepMigration && strings.HasSuffix(s.Name, "#1") || s.Name == "migrate: applied ids" || strings.HasPrefix(s.Name, "insert schema_migrations") {
			order = append(order, strings.TrimSuffix(s.Name, " #1"))
		}
	}
	if want := "migration 0012_risk_decisions,migration 0013_labels,migration 0014_console_state,migration 0015_hourly_events_per_app,migration 0017_rule_loads,insert schema_migrations: migrate: record,upgrade: migration 0010_low_cardinality,upgrade: migration 0011_retention_ttl,upgrade: migration 0016_risk_decisions_ttl,insert schema_migrations: upgrade: record,migrate: applied ids"; !strings.HasSuffix(strings.Join(order, ","), want) || !up.current || len(up.migrations) != 17 {
		t.Errorf("upgrade plan: %q (current %v, %d migrations)", order, up.current, len(up.migrations))
	}
	cmd, err := commandSQL(filepath.Join("..", "..", "cmd", "riskflow"), "rf")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd) == 0 {
		t.Error("no SQL found in cmd/riskflow (riskflow demo asks some)")
	}
	// The reader of cmd/riskflow's SQL refuses what it cannot evaluate, rather than skip it.
	dir := t.TempDir()
	src := "package main\n\nfunc f(db, tbl string) []string {\n\treturn []string{\"SELECT 1 FROM \" + db + \".t\", \"SELECT 2 FROM \" + tbl}\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := commandSQL(dir, "rf"); err == nil || !strings.Contains(err.Error(), "x.go:4: SQL built with tbl") {
		t.Errorf("commandSQL with an unknown variable: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(strings.Replace(src, `, "SELECT 2 FROM " + tbl`, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := commandSQL(dir, "rf"); err != nil || len(got) != 1 || got[0].sql != "SELECT 1 FROM rf.t" {
		t.Errorf("commandSQL = %v, %v", got, err)
	}
	for _, c := range []struct {
		text string
		code int32
		msg  string
	}{
		{"HTTP 500: Code: 44, e.displayText() = DB::Exception: Cannot add column b: column with this name already exists, e.what() = DB::Exception", 44, "Cannot add column b: column with this name already exists, e.what() = DB::Exception"},
		{"Code: 15. DB::Exception: Cannot add column `decision_id`: column with this name already exists. (DUPLICATE_COLUMN)", 15, "Cannot add column `decision_id`: column with this name already exists. (DUPLICATE_COLUMN)"},
	} {
		if ex := serverError(c.text); ex == nil || ex.Code != c.code || ex.Message != c.msg || !alreadyExists(ex) {
			t.Errorf("serverError(%q) = %+v", c.text, ex)
		}
	}
	if ex := serverError("connection refused"); ex != nil {
		t.Errorf("serverError of a text without an exception = %+v", ex)
	}
	if got := pinNow("SELECT now() - 600, today(), nownow(), toStartOfHour(now())", now); got != "SELECT toDateTime(1796441400) - 600, toDate(toDateTime(1796441400)), nownow(), toStartOfHour(toDateTime(1796441400))" {
		t.Errorf("pinNow = %s", got)
	}
	for _, c := range []struct {
		a, b    string
		ordered bool
		same    bool
	}{
		{"1\tx\n2\ty\n", "2\ty\n1\tx\n", false, true},
		{"1\tx\n2\ty\n", "2\ty\n1\tx\n", true, false},
		{"0.30000000000000004\n", "0.3\n", true, true},
		{"0.31\n", "0.3\n", true, false},
		{"3.13\tx\n", "3.12\tx\n", true, true}, // round(3.125, 2): half away from zero vs to even
		{"3.14\n", "3.12\n", true, false},
		{"13\n", "12\n", true, false}, // counts are never rounded
		{"-0.5\n", "-0.4\n", true, true},
		{"", "\n", true, true},
		{"a\n", "", true, false},
	} {
		if got := sameResults(c.a, c.b, c.ordered) == ""; got != c.same {
			t.Errorf("sameResults(%q, %q, %v) = %v", c.a, c.b, c.ordered, got)
		}
	}
}

// scoreKeysOf returns the events' (app_id, event_id) keys.
func scoreKeysOf(rs []schemas.ScoreRecord) []EventKey {
	keys := make([]EventKey, 0, len(rs))
	for _, r := range rs {
		keys = append(keys, EventKey{r.AppID, r.EventID})
	}
	return keys
}

// makeChdbRunRE finds the -run pattern of the Makefile's chdb target (CI's `make chdb`).
var makeChdbRunRE = regexp.MustCompile(`(?m)^chdb:\n(?:\t.*\n)*?\t.*-tags integration,chdb -run '([^']+)'`)

// Every test of the chDB build (integration and chdb tags) runs in `make chdb`, the only step of
// CI that builds them: TestSQLOnBothClickHousesRedelivered (a filled database with re-deliveries,
// "runs on re-delivered data in CI") was left out by the pattern and ran nowhere.
func TestMakeChdbRunsEveryChdbTest(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := makeChdbRunRE.FindSubmatch(mk)
	if m == nil {
		t.Fatalf("the Makefile's chdb target has no go test -tags integration,chdb -run '…' (%s)", makeChdbRunRE)
	}
	run, err := regexp.Compile(strings.ReplaceAll(string(m[1]), "$$", "$")) // make's $$ is one $
	if err != nil {
		t.Fatalf("make chdb's -run %q: %v", m[1], err)
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^//go:build .*\bchdb\b`).Match(src) {
			continue
		}
		for _, fn := range regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`).FindAllSubmatch(src, -1) {
			n++
			if !run.MatchString(string(fn[1])) {
				t.Errorf("%s: %s has the chdb build tag, but make chdb's -run %q leaves it out: it runs nowhere in CI", f, fn[1], m[1])
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d tests with the chdb build tag, want the cross-version checks", n)
	}
}
