package pipeline

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// decodeScoreRecord is decodeScoreRecordInto as a function of the bytes alone (copying them).
func decodeScoreRecord(data []byte) (schemas.ScoreRecord, error) {
	var r schemas.ScoreRecord
	err := decodeScoreRecordInto(data, &r, false)
	return r, err
}

func sampleScoreRecord() schemas.ScoreRecord {
	return schemas.ScoreRecord{
		EventID: "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", TS: time.Date(2025, 3, 14, 9, 26, 53, 589e6, time.UTC), AppID: "app-7c41d9",
		Flow: "one_click_login", PhoneHash: strings.Repeat("ab", 32), PhoneMasked: "1381234****", PhoneSegment: "1381234",
		IP: "223.104.63.18", Carrier: "CM", Platform: "android", DeviceID: "a3f9e2c1d4b5a6f7e8d9c0b1a2f3e4d5", Outcome: "success",
		TokenDigest: "3A7BD3E2360A3D29EEA436FCFB7E44C735D117C42D1C1835420B6B9942DD4F1B", ExID: "order-1",
		Geo:   schemas.Geo{Country: "CN", Province: "Guangdong", City: "Shenzhen", Lat: 22.5431, Lon: 114.0579, ASN: 9808, IPType: "mobile"},
		Score: 600, Tags: []string{"phones_per_ip", "idc_proxy_ip"},
		Detail: map[string]schemas.TagDetail{
			"phones_per_ip": {Score: 600, Reason: "26 phones from this datacenter IP in 10 min"},
			"idc_proxy_ip":  {Score: 300, Reason: "datacenter <AS> & \"proxy\" 中国"},
		},
		Hits: []schemas.RuleHit{
			{Rule: "ip_fanout", Tag: "phones_per_ip", Score: 600, Mode: "enforce", Reason: "26 phones from this datacenter IP in 10 min"},
			{Rule: "idc", Tag: "idc_proxy_ip", Score: 300, Mode: "shadow", Reason: "datacenter <AS> & \"proxy\" 中国\n"},
		},
		RulesVersion: "3f2a9c", ScoredAt: time.Date(2025, 3, 14, 9, 26, 53, 612345678, time.UTC),
	}
}

// sameDecode checks that decodeScoreRecord gives exactly what schemas.DecodeScoreRecord gives
// for data, and reports whether the fast path took it.
func sameDecode(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	want, wantErr := schemas.DecodeScoreRecord(data)
	got, gotErr := decodeScoreRecord(data)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%q: error %v, encoding/json %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(comparable(got), comparable(want)) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
	var r schemas.ScoreRecord
	fast = fastScoreRecord(data, string(data), &r)
	// The batch form (strings shared with data) reads the same.
	var shared schemas.ScoreRecord
	sharedErr := decodeScoreRecordInto(slices.Clone(data), &shared, true)
	if (sharedErr == nil) != (gotErr == nil) || !reflect.DeepEqual(comparable(shared), comparable(got)) {
		t.Fatalf("%q: shared-bytes decode differs: %#v, %v", data, shared, sharedErr)
	}
	if fast && wantErr != nil {
		t.Fatalf("%q: the fast path accepted what encoding/json refuses (%v)", data, wantErr)
	}
	return fast
}

// comparable replaces the times (whose *Location pointers may differ) by what they say, and
// empty containers by nil.
func comparable(r schemas.ScoreRecord) any {
	type view struct {
		R                 schemas.ScoreRecord
		TS, Scored        string
		TSZone, ScoredOff int
	}
	v := view{R: r, TS: r.TS.Format(time.RFC3339Nano), Scored: r.ScoredAt.Format(time.RFC3339Nano)}
	// Empty and nil read the same (len, range, index); the fast path leaves an empty detail nil.
	if len(v.R.Detail) == 0 {
		v.R.Detail = nil
	}
	if len(v.R.Tags) == 0 {
		v.R.Tags = nil
	}
	if len(v.R.Hits) == 0 {
		v.R.Hits = nil
	}
	_, v.TSZone = r.TS.Zone()
	_, v.ScoredOff = r.ScoredAt.Zone()
	v.R.TS, v.R.ScoredAt = time.Time{}, time.Time{}
	return v
}

func TestDecodeScoreRecordMatchesEncodingJSON(t *testing.T) {
	r := sampleScoreRecord()
	canonical, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	viaJSON, _ := json.Marshal(struct{ schemas.ScoreRecord }{r}) // encoding/json's own form (struct, not the method)
	indented, _ := json.MarshalIndent(json.RawMessage(canonical), "", "  ")
	clean := r
	clean.Score, clean.Tags, clean.Detail, clean.Hits, clean.Geo = 0, nil, nil, nil, schemas.Geo{}
	cleanJSON, _ := clean.MarshalJSON()
	fastCases := map[string][]byte{
		"canonical":        canonical,
		"encoding/json":    viaJSON,
		"indented":         indented,
		"clean":            cleanJSON,
		"reordered":        []byte(`{"scored_at":"2025-03-14T09:26:53.612+08:00","score":0,"phone_hash":"` + strings.Repeat("0", 64) + `","ts":"2025-03-14T09:26:53Z","event_id":"e"}`),
		"escapes":          []byte(`{"event_id":"e\u00e9\t\"\\\/","ts":"2025-03-14T09:26:53Z","phone_hash":"` + strings.Repeat("a", 64) + `","score":300,"tags":["a\u003cb"]}`),
		"numbers":          []byte(`{"event_id":"e","ts":"2025-03-14T09:26:53Z","phone_hash":"` + strings.Repeat("a", 64) + `","score":900,"geo":{"lat":-1.5e-3,"lon":0,"asn":4294967295},"hits":[{"score":-7}]}`),
		"empty containers": []byte(`{"event_id":"e","ts":"2025-03-14T09:26:53Z","phone_hash":"` + strings.Repeat("a", 64) + `","score":0,"tags":[],"detail":{},"hits":[],"geo":{}}`),
	}
	for name, data := range fastCases {
		t.Run(name, func(t *testing.T) {
			if !sameDecode(t, data) {
				t.Errorf("not taken by the fast path: %s", data)
			}
		})
	}
	// What the fast path leaves to encoding/json; the answer is the same either way.
	h := `"phone_hash":"` + strings.Repeat("a", 64) + `"`
	slowCases := []string{
		``, `null`, `[]`, `{}`, `{"event_id":"e"}`, `{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":301}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0} x`,
		`{"EVENT_ID":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0}`,
		`{"event_id":"e","event_id":"f",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"extra":{"a":[1,2]}}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"tags":null}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0.0}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":3e2}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0300}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"geo":{"asn":-1}}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"geo":{"asn":4294967296}}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"geo":{"lat":1.}}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"geo":{"lat":1e999}}`,
		`{"event_id":"e\ud83d\ude00",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0}`,
		`{"event_id":"e\ud800",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0}`,
		"{\"event_id\":\"e\xff\"," + h + `,"ts":"2025-03-14T09:26:53Z","score":0}`,
		"{\"event_id\":\"e\x01\"," + h + `,"ts":"2025-03-14T09:26:53Z","score":0}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14 09:26:53","score":0}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53\u005a","score":0}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"detail":{"a":{"score":1},"a":{"reason":"x"}}}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"detail":{"a":{"score":1,"Reason":"x"}}}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"hits":[{"rule":"r","rule":"s"}]}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,"hits":[{"rule":"r"},]}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0,}`,
		`{"event_id":"e",` + h + `,"ts":"2025-03-14T09:26:53Z","score":0`,
	}
	for _, c := range slowCases {
		if sameDecode(t, []byte(c)) {
			t.Errorf("fast path took %q", c)
		}
	}
}

func FuzzDecodeScoreRecord(f *testing.F) {
	r := sampleScoreRecord()
	canonical, _ := r.MarshalJSON()
	f.Add(canonical)
	viaJSON, _ := json.Marshal(struct{ schemas.ScoreRecord }{r})
	f.Add(viaJSON)
	f.Add([]byte(`{"event_id":"e\u00e9","ts":"2025-03-14T09:26:53+08:00","phone_hash":"` + strings.Repeat("a", 64) + `","score":0,"geo":{"lat":1e3,"asn":7},"detail":{"a":{"score":-0,"reason":"\n"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameDecode(t, data)
	})
}

func BenchmarkDecodeScoreRecord(b *testing.B) {
	r := sampleScoreRecord()
	v, _ := r.MarshalJSON()
	clean := r
	clean.Score, clean.Tags, clean.Detail, clean.Hits = 0, nil, nil, nil
	cv, _ := clean.MarshalJSON()
	for _, c := range []struct {
		name string
		data []byte
		dec  func([]byte) (schemas.ScoreRecord, error)
	}{
		{"flagged/encoding-json", v, schemas.DecodeScoreRecord},
		{"flagged/scanner", v, decodeScoreRecord},
		{"clean/encoding-json", cv, schemas.DecodeScoreRecord},
		{"clean/scanner", cv, decodeScoreRecord},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := c.dec(c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// special8 agrees with plainByte on every byte in every position.
func TestSpecial8(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			w := uint64(0)
			for i := 7; i >= 0; i-- {
				w = w<<8 | uint64(b[i])
			}
			if got := special8(w); got != !plainByte[c] {
				t.Fatalf("byte %#x at %d: special8 %v, plain %v", c, pos, got, plainByte[c])
			}
		}
	}
	// Plain bytes around a special one do not hide it, and plain neighbours never look special.
	for c := 0x20; c < 0x80; c++ {
		for d := 0; d < 256; d++ {
			w := uint64(0)
			for i := 0; i < 8; i++ {
				w = w<<8 | uint64(c)
			}
			w = w&^0xff | uint64(d)
			if got, want := special8(w), !plainByte[c] || !plainByte[d]; got != want {
				t.Fatalf("%#x with %#x: special8 %v, want %v", c, d, got, want)
			}
		}
	}
}
