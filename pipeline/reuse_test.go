package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/scoringtest"
)

// An event id sent again with another ts is another attempt under a reused id, not a
// re-delivery: the feature state counted the first one only, so its record must not replace the
// first one's in risk.scores (and ClickHouse). Stored, it had: a copy a few seconds later across
// a UTC midnight sat in another day's partition of verify_events and risk_scores, where merges
// never collapse it (two rows after OPTIMIZE FINAL), a day-bounded FINAL query counted the event
// on both days, the hourly views in both hours, and a backtest replayed it twice. A true
// re-delivery (the same ts) is scored again as before, and the same id in another app is another
// event.
func TestScoreStageDeadLettersAnEventIDReusedWithAnotherTS(t *testing.T) {
	sc := scoringtest.DefaultPack(t, scoring.WithPhoneHasher(testHasher))
	scores, dlq, obs := &fakeWriter{}, &fakeWriter{}, newCountObs()
	stage := &ScoreStage{Scorer: sc, Scores: scores, DLQ: dlq, Obs: obs, Workers: 1}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second).Add(-2 * time.Second)
	ev := func(app string, ts time.Time) []byte {
		b, _ := json.Marshal(map[string]any{"event_id": "ev-1", "ts": ts.UTC().Format(time.RFC3339Nano), "app_id": app,
			"flow": "one_click_login", "phone": "13800138000", "ip": "223.104.3.7", "outcome": "success"})
		return b
	}
	batch := []kafka.Message{
		msg(1, "k", ev("app1", t0)),
		msg(2, "k", ev("app1", t0.Add(500*time.Millisecond))), // re-delivered: the same second
		msg(3, "k", ev("app1", t0.Add(5*time.Second))),        // the id reused for another attempt
		msg(4, "k", ev("app2", t0.Add(5*time.Second))),        // another app's event
	}
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range scores.written() {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.AppID+"@"+r.TS.Format(time.RFC3339))
	}
	want := []string{"app1@" + t0.UTC().Format(time.RFC3339), "app1@" + t0.UTC().Format(time.RFC3339), "app2@" + t0.Add(5*time.Second).UTC().Format(time.RFC3339)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("score records %v, want %v", got, want)
	}
	dl := dlq.written()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1 (the reused id)", len(dl))
	}
	if off, _ := header(dl[0], HeaderOffset); off != "3" {
		t.Errorf("dead letter of offset %s, want 3", off)
	}
	if f, _ := header(dl[0], HeaderField); f != "ts" {
		t.Errorf("dead letter field %q, want ts", f)
	}
	if e, _ := header(dl[0], HeaderError); !strings.Contains(e, "ev-1") || !strings.Contains(e, t0.UTC().Format(time.RFC3339)) {
		t.Errorf("dead letter error %q does not name the id and the ts it was counted with", e)
	}
	if obs.dead[ReasonDecode] != 1 {
		t.Errorf("dead letters counted %v, want 1 under %s", obs.dead, ReasonDecode)
	}
}
