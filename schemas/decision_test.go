package schemas

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// AppendJSON writes what encoding/json writes (with [] and {} for empty lists and detail), and
// DecodeDecision reads it back unchanged.
func TestDecisionAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	texts := []string{"", "a", "é\"\\<>&\u2028\x01", "api1-5f3a9c2e-00000000000004d2", strings.Repeat("z", 70)}
	pick := func() string { return texts[rng.IntN(len(texts))] }
	for i := range 2000 {
		d := Decision{
			DecisionID: "d-" + texts[rng.IntN(4)], TS: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC(), AppID: "a" + pick(), Flow: pick(),
			PhoneHash: strings.Repeat("ab", 32), PhoneMasked: "1381234****", PhoneSegment: "1381234", IP: pick(), Carrier: pick(),
			Platform: pick(), DeviceID: pick(), TokenDigest: pick(), ExID: pick(), Score: []int{0, 300, 600, 900}[i%4],
			RulesVersion: pick(), Node: pick(), LatencyUS: rng.Int64N(1e7),
		}
		d.Tags, d.Detail, d.Hits = []string{}, map[string]TagDetail{}, []RuleHit{}
		for range rng.IntN(4) {
			tag := "t" + pick()
			d.Tags = append(d.Tags, tag)
			d.Detail[tag] = TagDetail{Score: 600, Reason: pick()}
			d.Hits = append(d.Hits, RuleHit{Rule: "r" + pick(), Tag: tag, Score: 600, Mode: []string{"enforce", "shadow", "tag"}[rng.IntN(3)], Reason: pick()})
		}
		want, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
		back, err := DecodeDecision(want)
		if err != nil {
			t.Fatalf("DecodeDecision(%s): %v", want, err)
		}
		if again := back.AppendJSON(nil); string(again) != string(want) {
			t.Fatalf("round trip\n got %s\nwant %s", again, want)
		}
	}
}

func TestDecodeDecisionRefuses(t *testing.T) {
	good := `{"decision_id":"d1","ts":"2026-03-14T09:00:00Z","app_id":"a","phone_hash":"` + strings.Repeat("ab", 32) + `","phone_masked":"1381234****","phone_segment":"1381234","ip":"1.2.3.4","score":600,"tags":[],"detail":{},"hits":[],"rules_version":"v","node":"n","latency_us":12}`
	if _, err := DecodeDecision([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for field, bad := range map[string]string{
		"decision_id": strings.Replace(good, `"d1"`, `""`, 1),
		"ts":          strings.Replace(good, `"ts":"2026-03-14T09:00:00Z",`, ``, 1),
		"app_id":      strings.Replace(good, `"app_id":"a"`, `"app_id":""`, 1),
		"phone_hash":  strings.Replace(good, strings.Repeat("ab", 32), "ab", 1),
		"score":       strings.Replace(good, `"score":600`, `"score":601`, 1),
		"latency_us":  strings.Replace(good, `"latency_us":12`, `"latency_us":-1`, 1),
	} {
		_, err := DecodeDecision([]byte(bad))
		if fe, ok := AsFieldError(err); !ok || fe.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := DecodeDecision([]byte(`{"decision_id":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

// FuzzDecodeDecision: any input is refused with a *FieldError or decodes to a decision that
// AppendJSON writes back to the same decision.
func FuzzDecodeDecision(f *testing.F) {
	f.Add([]byte(`{"decision_id":"d1","ts":"2026-03-14T09:00:00Z","app_id":"a","phone_hash":"` + strings.Repeat("ab", 32) + `","phone_masked":"1381234****","phone_segment":"1381234","ip":"1.2.3.4","score":600,"tags":["t"],"detail":{"t":{"score":600,"reason":"r"}},"hits":[{"rule":"r","tag":"t","score":600,"mode":"shadow","reason":"x"}],"rules_version":"v","node":"n","latency_us":12}`))
	f.Add([]byte(`{"decision_id":"d","ts":"2026-03-14T09:00:00Z","app_id":"a","phone_hash":"` + strings.Repeat("0", 64) + `","score":0}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDecision(data)
		if err != nil {
			if _, ok := AsFieldError(err); !ok {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		if y := d.TS.Year(); y < 0 || y > 9999 {
			return // encoding/json cannot write it either
		}
		again, err := DecodeDecision(d.AppendJSON(nil))
		if err != nil {
			t.Fatalf("accepted %q but refuses its own encoding: %v", data, err)
		}
		if string(again.AppendJSON(nil)) != string(d.AppendJSON(nil)) {
			t.Fatalf("round trip changed the decision")
		}
	})
}
