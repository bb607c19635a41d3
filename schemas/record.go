package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// ScoreRecord is one scored event on the risk.scores topic: the event without its plaintext phone,
// the verdict, and every rule hit (shadow hits included, which never count in Score).
type ScoreRecord struct {
	EventID      string               `json:"event_id"`
	TS           time.Time            `json:"ts"`
	AppID        string               `json:"app_id"`
	Flow         string               `json:"flow"`
	PhoneHash    string               `json:"phone_hash"`    // hex HMAC-SHA256 of the number, keyed
	PhoneMasked  string               `json:"phone_masked"`  // 1381234**** (never more than the segment)
	PhoneSegment string               `json:"phone_segment"` // first 7 digits
	IP           string               `json:"ip"`
	Carrier      string               `json:"carrier,omitempty"`
	Platform     string               `json:"platform,omitempty"`
	DeviceID     string               `json:"device_id,omitempty"`
	Outcome      string               `json:"outcome"`
	ErrorCode    string               `json:"error_code,omitempty"`
	TokenDigest  string               `json:"token_digest,omitempty"`
	ExID         string               `json:"ex_id,omitempty"`
	DecisionID   string               `json:"decision_id,omitempty"` // the /v1/risk/check verdict the attempt followed
	Geo          Geo                  `json:"geo"`
	Score        int                  `json:"score"`
	Tags         []string             `json:"tags"`
	Detail       map[string]TagDetail `json:"detail"`
	Hits         []RuleHit            `json:"hits"`
	RulesVersion string               `json:"rules_version"`
	ScoredAt     time.Time            `json:"scored_at"`
}

// Geo is what the geo databases said about the client IP ("" / 0 when unknown or geo is off).
type Geo struct {
	Country  string  `json:"country,omitempty"`  // ISO code
	Province string  `json:"province,omitempty"` // subdivision name (English)
	City     string  `json:"city,omitempty"`
	Lat      float64 `json:"lat,omitempty"`
	Lon      float64 `json:"lon,omitempty"`
	ASN      uint32  `json:"asn,omitempty"`
	IPType   string  `json:"ip_type,omitempty"` // mobile, broadband, idc, unknown
}

// RuleHit is one rule that matched. Mode is "enforce" or "shadow".
type RuleHit struct {
	Rule   string `json:"rule"`
	Tag    string `json:"tag"`
	Score  int    `json:"score"`
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
}

// DecodeScoreRecord decodes a risk.scores message and checks the fields the archiver relies on.
func DecodeScoreRecord(data []byte) (ScoreRecord, error) {
	var r ScoreRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return ScoreRecord{}, fmt.Errorf("decode score record: %w", timeFieldError(data, jsonError(err), "ts", "scored_at"))
	}
	switch {
	case r.EventID == "":
		return ScoreRecord{}, fieldErr("event_id", "is required")
	case r.TS.IsZero():
		return ScoreRecord{}, fieldErr("ts", "is required")
	case len(r.PhoneHash) != 64:
		return ScoreRecord{}, fieldErr("phone_hash", "must be 64 hex digits")
	case !ValidScore(r.Score):
		return ScoreRecord{}, fieldErr("score", "%d is not one of 0, 300, 600, 900", r.Score)
	}
	return r, nil
}

// UnmarshalJSON decodes the JSON document data into v as json.Unmarshal does, its error a
// *FieldError worded as the event decoder words its own: the field and what it must be ("at: must
// be a string, got number"), never encoding/json's Go-internal text ("cannot unmarshal array into
// Go value of type …"). timeFields are v's members of type time.Time, named when they do not decode.
// A member of a struct v embeds is named by its JSON name ("hours"), not after the Go type that
// holds it, as encoding/json names it ("jobView.hours").
func UnmarshalJSON(data []byte, v any, timeFields ...string) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	err = timeFieldError(data, jsonError(err), timeFields...)
	if fe, ok := AsFieldError(err); ok {
		t := reflect.TypeOf(v)
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t != nil && t.Kind() == reflect.Struct {
			for f := range t.Fields() {
				if f.Anonymous && f.Type.Kind() == reflect.Struct {
					fe.Field = strings.TrimPrefix(fe.Field, f.Type.Name()+".")
				}
			}
		}
	}
	return err
}

// timeFieldError names the field of a time that did not decode: encoding/json reports
// time.Time's own error ("Time.UnmarshalJSON: input is not a JSON string") without the field it
// was reading. err is the decoding error as jsonError made it; fields are the record's times.
func timeFieldError(data []byte, err error, fields ...string) error {
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "" {
		return err
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return err
	}
	for _, name := range fields {
		v, ok := raw[name]
		if !ok {
			continue
		}
		var t time.Time
		if t.UnmarshalJSON(v) == nil {
			continue
		}
		var str string
		if json.Unmarshal(v, &str) == nil {
			return fieldErr(name, "%s is not an RFC 3339 time", Excerpt(str, 40))
		}
		kind := "number"
		switch v[0] {
		case '{':
			kind = "object"
		case '[':
			kind = "array"
		case 't', 'f':
			kind = "bool"
		}
		return fieldErr(name, "must be an RFC 3339 time string, got %s", kind)
	}
	return err
}
