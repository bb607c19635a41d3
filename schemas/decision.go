package schemas

import (
	"encoding/json"
	"fmt"
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
		return Decision{}, jsonError(err)
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
