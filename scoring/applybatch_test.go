package scoring_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// Events applied in batches leave the state applying them one by one leaves: every check after
// them gets the same verdict, hits and detail, and the same events are refused as duplicates.
func TestApplyBatchMatchesApply(t *testing.T) {
	now := t0
	clock := scoring.WithClock(func() time.Time { return now })
	g := fixtureGeo(t, nil)
	one := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(g), clock)
	many := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(g), clock)
	pop := newPopulation(300, 30)
	r := rand.New(rand.NewPCG(7, 7))
	var evs []schemas.VerifyEvent
	for i := range 3000 {
		j := r.IntN(len(pop.phones))
		ev := event(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second), pop.phones[j], pop.ip(r, j).String())
		ev.Carrier, ev.DeviceID = pop.carriers[j], pop.devices[j]
		if r.IntN(5) == 0 {
			ev.Outcome, ev.ErrorCode = schemas.OutcomeFail, "103911"
		}
		if r.IntN(3) == 0 {
			ev.TokenDigest = fmt.Sprintf("%064x", r.IntN(2000))
		}
		evs = append(evs, ev)
		if r.IntN(10) == 0 { // re-delivered
			evs = append(evs, evs[r.IntN(len(evs))])
		}
	}
	applied := make([]bool, 0, 200)
	for rest := evs; len(rest) > 0; {
		m := min(1+r.IntN(200), len(rest))
		applied = applied[:m]
		n := many.ApplyBatch(rest[:m], applied)
		want := 0
		for i := range rest[:m] {
			ok := one.Apply(&rest[i])
			if ok {
				want++
			}
			if ok != applied[i] {
				t.Fatalf("event %s: applied %v in a batch, %v one by one", rest[i].EventID, applied[i], ok)
			}
		}
		if n != want {
			t.Fatalf("ApplyBatch = %d, want %d", n, want)
		}
		rest = rest[m:]
	}
	now = evs[len(evs)-1].TS.Add(time.Second)
	matched := 0
	for i := range pop.phones {
		ev := evs[r.IntN(len(evs))]
		req := &schemas.CheckRequest{Phone: pop.phones[i], IP: ev.IP, Carrier: pop.carriers[i], AppID: ev.AppID,
			Flow: ev.Flow, Platform: ev.Platform, DeviceID: pop.devices[i], TokenDigest: ev.TokenDigest}
		a, ha, errA := one.CheckHits(req)
		b, hb, errB := many.CheckHits(req)
		if errA != nil || errB != nil {
			t.Fatalf("check: %v, %v", errA, errB)
		}
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ha, hb) {
			t.Fatalf("phone %d: one by one %+v %v; batched %+v %v", i, a, ha, b, hb)
		}
		if len(ha) > 0 {
			matched++
		}
	}
	if matched == 0 {
		t.Fatal("no check matched a rule: the comparison proves nothing")
	}
}
