package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// plainRecord is ScoreRecord without its MarshalJSON: what encoding/json writes for the struct.
type plainRecord ScoreRecord

func viaEncodingJSON(t *testing.T, r ScoreRecord) []byte {
	t.Helper()
	if r.Tags == nil {
		r.Tags = []string{}
	}
	if r.Detail == nil {
		r.Detail = map[string]TagDetail{}
	}
	if r.Hits == nil {
		r.Hits = []RuleHit{}
	}
	b, err := json.Marshal(plainRecord(r))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var trickyStrings = []string{
	"", "a", "app-7c41d9", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r",
	"\b\f\x00\x01\x1f\x7f", "中文 理由：38 个号码", "\u2028\u2029", "bad utf8 \xff\xfe end", "\xe4\xb8", "emoji 🚀",
}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	b := make([]byte, r.IntN(12))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randomRecord(r *rand.Rand) ScoreRecord {
	s := func() string { return randomString(r) }
	floats := []float64{0, 39.9042, -33.8688, 116.407396, 1e-7, 1e21, -2.5e-9, 123456789.125, math.SmallestNonzeroFloat64, math.MaxFloat64}
	rec := ScoreRecord{
		EventID: s(), TS: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", int(r.IntN(48)-24)*1800)),
		AppID: s(), Flow: s(), PhoneHash: s(), PhoneMasked: s(), PhoneSegment: s(), IP: s(),
		Outcome: s(), Score: []int{0, 300, 600, 900}[r.IntN(4)], RulesVersion: s(),
		ScoredAt: time.Unix(r.Int64N(4e9), 0).UTC(),
	}
	if r.IntN(2) == 0 {
		rec.Carrier, rec.Platform, rec.DeviceID, rec.ErrorCode, rec.TokenDigest, rec.ExID = s(), s(), s(), s(), s(), s()
	}
	if r.IntN(2) == 0 {
		rec.Geo = Geo{Country: s(), Province: s(), City: s(), Lat: floats[r.IntN(len(floats))],
			Lon: floats[r.IntN(len(floats))], ASN: uint32(r.IntN(3) * 56040), IPType: s()}
	} else if r.IntN(2) == 0 {
		rec.Geo = Geo{Lon: floats[r.IntN(len(floats))]} // a first field that is not the first declared
	}
	for range r.IntN(4) {
		rec.Tags = append(rec.Tags, s())
		rec.Hits = append(rec.Hits, RuleHit{Rule: s(), Tag: s(), Score: 300, Mode: s(), Reason: s()})
	}
	if len(rec.Tags) > 0 {
		rec.Detail = map[string]TagDetail{}
		for range r.IntN(5) + 1 {
			rec.Detail[s()] = TagDetail{Score: 600, Reason: s()}
		}
	}
	return rec
}

// AppendJSON writes exactly what encoding/json writes for the struct.
func TestScoreRecordAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range 20000 {
		rec := randomRecord(r)
		want := viaEncodingJSON(t, rec)
		got := rec.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
		m, err := json.Marshal(rec)
		if err != nil || !bytes.Equal(m, want) {
			t.Fatalf("record %d: json.Marshal gives %s (%v)", i, m, err)
		}
	}
}

func TestScoreRecordEmptyListsAreNotNull(t *testing.T) {
	b, err := json.Marshal(ScoreRecord{TS: time.Unix(0, 0).UTC(), ScoredAt: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"tags":[]`, `"detail":{}`, `"hits":[]`, `"geo":{}`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}

func TestScoreRecordMarshalRejectsWhatJSONCannotHold(t *testing.T) {
	ok := ScoreRecord{TS: time.Unix(0, 0), ScoredAt: time.Unix(0, 0)}
	for name, rec := range map[string]ScoreRecord{
		"ts":        {TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), ScoredAt: ok.ScoredAt},
		"scored_at": {TS: ok.TS, ScoredAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"geo":       {TS: ok.TS, ScoredAt: ok.ScoredAt, Geo: Geo{Lat: math.NaN()}},
	} {
		_, err := json.Marshal(rec)
		var fe *FieldError
		if err == nil || !errors.As(err, &fe) || fe.Field != name {
			t.Errorf("%s: err %v, want a FieldError naming it", name, err)
		}
	}
}

func BenchmarkScoreRecordJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	rec := randomRecord(r)
	rec.Tags, rec.Hits, rec.Detail = []string{"phone_velocity"}, []RuleHit{{Rule: "pv", Tag: "phone_velocity", Score: 300, Mode: "enforce", Reason: "3 verifications in 10 min"}},
		map[string]TagDetail{"phone_velocity": {Score: 300, Reason: "3 verifications in 10 min"}}
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plainRecord(rec)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = rec.AppendJSON(buf[:0])
		}
	})
}

type plainCheck RiskCheck

// RiskCheck's JSON is encoding/json's for the struct, with [] and {} for no tags and no detail.
func TestRiskCheckAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := range 20000 {
		rec := randomRecord(r)
		rc := RiskCheck{Code: r.IntN(3) * 200, Content: randomString(r), Score: rec.Score, Tags: rec.Tags, Detail: rec.Detail}
		if r.IntN(2) == 0 {
			rc.ID, rc.ExID, rc.RulesVersion = randomString(r), randomString(r), randomString(r)
		}
		norm := rc
		if norm.Tags == nil {
			norm.Tags = []string{}
		}
		if norm.Detail == nil {
			norm.Detail = map[string]TagDetail{}
		}
		want, err := json.Marshal(plainCheck(norm))
		if err != nil {
			t.Fatal(err)
		}
		if got := rc.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("check %d:\n got %s\nwant %s", i, got, want)
		}
		if m, err := json.Marshal(rc); err != nil || !bytes.Equal(m, want) {
			t.Fatalf("check %d: json.Marshal gives %s (%v)", i, m, err)
		}
	}
}

// A score record whose time is not a time string names the field, as every other wrong type does:
// encoding/json reports time.Time's own error without it.
func TestDecodeScoreRecordNamesABadTime(t *testing.T) {
	for _, c := range []struct{ field, value string }{{"ts", `12345`}, {"scored_at", `"yesterday"`}, {"ts", `"+86 138 1234 5678"`}} {
		data := `{"event_id":"e1","app_id":"a","phone_hash":"` + strings.Repeat("ab", 32) + `","score":0,"` + c.field + `":` + c.value + `}`
		_, err := DecodeScoreRecord([]byte(data))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want an error naming %s", data, err, c.field)
		}
		if err != nil && strings.Contains(err.Error(), "138 1234 5678") {
			t.Errorf("the error shows the number: %v", err)
		}
	}
}

// So does a decision's (the decision archiver dead-letters it with the field).
func TestDecodeDecisionNamesABadTime(t *testing.T) {
	for _, v := range []string{`12345`, `"yesterday"`, `"+86 138 1234 5678"`, `{}`} {
		data := `{"decision_id":"d1","app_id":"a","phone_hash":"` + strings.Repeat("ab", 32) + `","score":0,"ts":` + v + `}`
		_, err := DecodeDecision([]byte(data))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "ts" {
			t.Errorf("%s: %v, want an error naming ts", data, err)
		}
		if err != nil && strings.Contains(err.Error(), "138 1234 5678") {
			t.Errorf("the error shows the number: %v", err)
		}
	}
}

// UnmarshalJSON names the member that does not decode by its JSON name and what it must be, a
// member of an embedded struct too, never in encoding/json's Go terms ("Go struct field
// outer.inner.hours of type int", "Time.UnmarshalJSON: …").
func TestUnmarshalJSONNamesTheMember(t *testing.T) {
	type inner struct {
		Hours int       `json:"hours"`
		At    time.Time `json:"at"`
	}
	type outer struct {
		inner
		Tags []string `json:"tags"`
	}
	for body, want := range map[string]string{
		`{"hours":"24"}`: "hours: must be a number, got string",
		`{"tags":{}}`:    "tags: must be an array, got object",
		`{"at":true}`:    "at: must be an RFC 3339 time string, got bool",
		`[1]`:            "expected a JSON object, got array",
		`{"hours":`:      "invalid JSON",
	} {
		var o outer
		err := UnmarshalJSON([]byte(body), &o, "at")
		if _, ok := AsFieldError(err); !ok || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// A time UnmarshalJSON is not told of (not among its timeFields: the console's stored job's
// "updated", the times of the backtest report inside it) that holds a number was quoted by
// time.Time's own error, "parsing time \"13812345678\" as …", the number in plaintext in the
// error and the log line that prints it.
func TestUnmarshalJSONMasksAnUnnamedTime(t *testing.T) {
	var v struct {
		Nested struct {
			T time.Time `json:"t"`
		} `json:"nested"`
		At time.Time `json:"at"`
	}
	for _, in := range []string{`{"nested":{"t":"13812345678"}}`, `{"at":"138 1234 5678"}`} {
		err := UnmarshalJSON([]byte(in), &v)
		if err == nil || strings.Contains(err.Error(), "5678") || !strings.Contains(err.Error(), "<phone>") || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("%s: err = %v, want the time refused, its number masked", in, err)
		}
	}
}
