package schemas

import (
	"bytes"
	"net/netip"
	"strconv"
)

// CheckRequest is the body of POST /v1/risk/check: the verification about to be answered. It is
// validated with the same rules as VerifyEvent; phone, ip and app_id are required.
type CheckRequest struct {
	Phone       string     `json:"phone"`
	IP          netip.Addr `json:"ip"`
	Carrier     string     `json:"carrier,omitempty"`
	AppID       string     `json:"app_id"`
	Flow        string     `json:"flow,omitempty"`
	Platform    string     `json:"platform,omitempty"`
	DeviceID    string     `json:"device_id,omitempty"`
	TokenDigest string     `json:"token_digest,omitempty"`
	ExID        string     `json:"ex_id,omitempty"`
}

type wireCheck struct {
	Phone       string `json:"phone"`
	IP          string `json:"ip"`
	Carrier     string `json:"carrier"`
	AppID       string `json:"app_id"`
	Flow        string `json:"flow"`
	Platform    string `json:"platform"`
	DeviceID    string `json:"device_id"`
	TokenDigest string `json:"token_digest"`
	ExID        string `json:"ex_id"`
}

func (w *wireCheck) members() []member {
	return []member{
		{"phone", &w.Phone}, {"ip", &w.IP}, {"carrier", &w.Carrier}, {"app_id", &w.AppID},
		{"flow", &w.Flow}, {"platform", &w.Platform}, {"device_id", &w.DeviceID},
		{"token_digest", &w.TokenDigest}, {"ex_id", &w.ExID},
	}
}

// DecodeCheckRequest decodes and validates a scoring request strictly. Errors are *FieldError.
func DecodeCheckRequest(data []byte) (CheckRequest, error) {
	var w wireCheck
	if len(bytes.TrimSpace(data)) == 0 {
		return CheckRequest{}, &FieldError{Reason: "body is empty: expected a JSON object"}
	}
	scan, err := decodeObject(data, w.members())
	if err != nil {
		return CheckRequest{}, err
	}
	switch {
	case scan.err != nil && (scan.unknown == nil || scan.errFirst):
		return CheckRequest{}, scan.err
	case scan.unknown != nil:
		return CheckRequest{}, scan.unknownErr()
	}
	r := CheckRequest{
		Carrier: w.Carrier, AppID: w.AppID, Flow: w.Flow, Platform: w.Platform,
		DeviceID: w.DeviceID, ExID: w.ExID,
	}
	if r.Phone, err = NormalizePhone(w.Phone); err != nil {
		return CheckRequest{}, err
	}
	if r.IP, err = ParseIP(w.IP); err != nil {
		return CheckRequest{}, err
	}
	if err = checkText("app_id", w.AppID, true, MaxAppIDLen); err != nil {
		return CheckRequest{}, err
	}
	if err = checkEnum("flow", w.Flow, append([]string{""}, flows...), false); err != nil {
		return CheckRequest{}, err
	}
	if err = checkEnum("carrier", w.Carrier, carriers, false); err != nil {
		return CheckRequest{}, err
	}
	if err = checkEnum("platform", w.Platform, platforms, false); err != nil {
		return CheckRequest{}, err
	}
	if err = checkText("device_id", w.DeviceID, false, MaxDeviceIDLen); err != nil {
		return CheckRequest{}, err
	}
	if r.TokenDigest, err = NormalizeTokenDigest(w.TokenDigest); err != nil {
		return CheckRequest{}, err
	}
	if err = checkText("ex_id", w.ExID, false, MaxExIDLen); err != nil {
		return CheckRequest{}, err
	}
	return r, nil
}

// RiskCheck is the verdict: the `riskCheck` object of a loginTokenVerify response, plus ids.
type RiskCheck struct {
	Code         int                  `json:"code"`
	Content      string               `json:"content"`
	Score        int                  `json:"score"`
	Tags         []string             `json:"tags"`
	Detail       map[string]TagDetail `json:"detail"`
	ID           string               `json:"id,omitempty"`
	ExID         string               `json:"exID,omitempty"`
	RulesVersion string               `json:"rules_version,omitempty"`
}

// TagDetail explains one tag: its level and a reason that shows the numbers.
type TagDetail struct {
	Score  int    `json:"score"`
	Reason string `json:"reason"`
}

// Score levels (seeds: 0 pass · 300 observe · 600 step up · 900 block).
const (
	ScorePass    = 0
	ScoreObserve = 300
	ScoreStepUp  = 600
	ScoreBlock   = 900
)

// ValidScore reports whether s is one of the four levels.
func ValidScore(s int) bool {
	return s == ScorePass || s == ScoreObserve || s == ScoreStepUp || s == ScoreBlock
}

// ErrorBody is every non-2xx API response: a non-zero code and what is wrong.
type ErrorBody struct {
	Code    int    `json:"code"`
	Content string `json:"content"`
}

// AppendJSON appends the JSON form of r to b: what encoding/json writes for the struct, except
// that `tags` and `detail` are [] and {} when there are none. The API answers every check this
// way (the login hot path), without reflection.
func (r *RiskCheck) AppendJSON(b []byte) []byte {
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(r.Code), 10)
	b = append(b, `,"content":`...)
	b = appendJSONString(b, r.Content)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(r.Score), 10)
	b = appendTags(b, r.Tags)
	b = append(b, `,"detail":{`...)
	b = appendDetail(b, r.Detail)
	b = append(b, '}')
	b = appendOptString(b, `,"id":`, r.ID)
	b = appendOptString(b, `,"exID":`, r.ExID)
	b = appendOptString(b, `,"rules_version":`, r.RulesVersion)
	return append(b, '}')
}

// MarshalJSON is AppendJSON.
func (r RiskCheck) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 256)), nil
}
