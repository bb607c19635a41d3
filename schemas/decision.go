package schemas

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Decision is one verdict the API served on POST /v1/risk/check, as the risk.decisions topic and
// the risk_decisions table keep it: what was asked (without the plaintext phone), what riskflow
// answered, every rule that matched — shadow and tag rules included — with its reason, the rules
// version, the node that answered and how long it took. DecisionID is the `id` of the answer; a
// VerifyEvent that carries it as decision_id joins the verdict to the attempt's outcome.
type Decision struct {
	DecisionID   string               `json:"decision_id"`
	TS           time.Time            `json:"ts"` // when the verdict was served
	AppID        string               `json:"app_id"`
	Flow         string               `json:"flow,omitempty"`
	PhoneHash    string               `json:"phone_hash"`    // hex HMAC-SHA256 of the number, keyed
	PhoneMasked  string               `json:"phone_masked"`  // 1381234**** (never more than the segment)
	PhoneSegment string               `json:"phone_segment"` // first 7 digits
	IP           string               `json:"ip"`
	Carrier      string               `json:"carrier,omitempty"`
	Platform     string               `json:"platform,omitempty"`
	DeviceID     string               `json:"device_id,omitempty"`
	TokenDigest  string               `json:"token_digest,omitempty"`
	ExID         string               `json:"ex_id,omitempty"`
	Score        int                  `json:"score"`
	Tags         []string             `json:"tags"`
	Detail       map[string]TagDetail `json:"detail"`
	Hits         []RuleHit            `json:"hits"` // every match: enforce, shadow, tag and allow rules
	RulesVersion string               `json:"rules_version"`
	Node         string               `json:"node"`       // the API process that answered
	LatencyUS    int64                `json:"latency_us"` // check latency in the handler, microseconds
}

// MaxDecisionBytes bounds an encoded decision the archiver accepts (a verdict with every rule of a
// large pack matching stays far below it).
const MaxDecisionBytes = 256 << 10

// DecodeDecision decodes a risk.decisions message and checks the fields the archiver relies on.
// Errors are *FieldError.
func DecodeDecision(data []byte) (Decision, error) {
	if len(data) > MaxDecisionBytes {
		return Decision{}, &FieldError{Reason: fmt.Sprintf("decision is %d bytes, over %d", len(data), MaxDecisionBytes)}
	}
	var d Decision
	if err := json.Unmarshal(data, &d); err != nil {
		return Decision{}, timeFieldError(data, jsonError(err), "ts")
	}
	switch {
	case d.DecisionID == "":
		return Decision{}, fieldErr("decision_id", "is required")
	case len(d.DecisionID) > MaxDecisionIDLen:
		return Decision{}, fieldErr("decision_id", "is longer than %d bytes", MaxDecisionIDLen)
	case d.TS.IsZero():
		return Decision{}, fieldErr("ts", "is required")
	case d.AppID == "":
		return Decision{}, fieldErr("app_id", "is required")
	case len(d.PhoneHash) != 64:
		return Decision{}, fieldErr("phone_hash", "must be 64 hex digits")
	case !ValidScore(d.Score):
		return Decision{}, fieldErr("score", "%d is not one of 0, 300, 600, 900", d.Score)
	case d.LatencyUS < 0:
		return Decision{}, fieldErr("latency_us", "must not be negative")
	}
	if d.Tags == nil {
		d.Tags = []string{}
	}
	return d, nil
}

// AppendJSON appends the JSON form of d to b: byte for byte what encoding/json writes for the
// struct, except that empty tags, detail and hits are always [] / {} / []. The decision log
// encodes every verdict this way, off the check's path but on the same cores.
func (d *Decision) AppendJSON(b []byte) []byte {
	b = append(b, `{"decision_id":`...)
	b = appendJSONString(b, d.DecisionID)
	b = append(b, `,"ts":`...)
	b = appendJSONTime(b, d.TS)
	b = append(b, `,"app_id":`...)
	b = appendJSONString(b, d.AppID)
	b = appendOptString(b, `,"flow":`, d.Flow)
	b = append(b, `,"phone_hash":`...)
	b = appendJSONString(b, d.PhoneHash)
	b = append(b, `,"phone_masked":`...)
	b = appendJSONString(b, d.PhoneMasked)
	b = append(b, `,"phone_segment":`...)
	b = appendJSONString(b, d.PhoneSegment)
	b = append(b, `,"ip":`...)
	b = appendJSONString(b, d.IP)
	b = appendOptString(b, `,"carrier":`, d.Carrier)
	b = appendOptString(b, `,"platform":`, d.Platform)
	b = appendOptString(b, `,"device_id":`, d.DeviceID)
	b = appendOptString(b, `,"token_digest":`, d.TokenDigest)
	b = appendOptString(b, `,"ex_id":`, d.ExID)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(d.Score), 10)
	b = appendTags(b, d.Tags)
	b = append(b, `,"detail":{`...)
	b = appendDetail(b, d.Detail)
	b = append(b, '}')
	b = appendHits(b, d.Hits)
	b = append(b, `,"rules_version":`...)
	b = appendJSONString(b, d.RulesVersion)
	b = append(b, `,"node":`...)
	b = appendJSONString(b, d.Node)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, d.LatencyUS, 10)
	return append(b, '}')
}
