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

// The members of a check request, in checkMembers.names order.
const (
	ckPhone = iota
	ckIP
	ckCarrier
	ckAppID
	ckFlow
	ckPlatform
	ckDeviceID
	ckTokenDigest
	ckExID
)

var checkMembers = newFieldSet([]string{"phone", "ip", "carrier", "app_id", "flow", "platform",
	"device_id", "token_digest", "ex_id"}, checkMember, -1)

func checkMember(name []byte) int {
	switch string(name) {
	case "phone":
		return ckPhone
	case "ip":
		return ckIP
	case "carrier":
		return ckCarrier
	case "app_id":
		return ckAppID
	case "flow":
		return ckFlow
	case "platform":
		return ckPlatform
	case "device_id":
		return ckDeviceID
	case "token_digest":
		return ckTokenDigest
	case "ex_id":
		return ckExID
	}
	return -1
}

// optionalFlows is flows for a field that may be left out.
var optionalFlows = append([]string{""}, flows...)

// DecodeCheckRequest decodes and validates a scoring request strictly. Errors are *FieldError.
// Like DecodeEvent's, the request's strings share one allocation and do not refer to data.
func DecodeCheckRequest(data []byte) (CheckRequest, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return CheckRequest{}, &FieldError{Reason: "body is empty: expected a JSON object"}
	}
	var stack [decodeBufSize]byte
	var vals objectValues
	buf, scan, err := decodeObject(data, checkMembers, &vals, stack[:0])
	if err != nil {
		return CheckRequest{}, err
	}
	switch {
	case scan.err != nil && (scan.unknown == nil || scan.errFirst):
		return CheckRequest{}, scan.err
	case scan.unknown != nil:
		return CheckRequest{}, scan.unknownErr()
	}
	digestOK := lowerHexDigest(buf, vals.text[ckTokenDigest])
	text := string(buf)
	at := func(k int) string { return text[vals.text[k].start:vals.text[k].end] }
	r := CheckRequest{AppID: at(ckAppID), DeviceID: at(ckDeviceID), ExID: at(ckExID)}
	if r.Phone, err = NormalizePhone(at(ckPhone)); err != nil {
		return CheckRequest{}, err
	}
	if r.IP, err = ParseIP(at(ckIP)); err != nil {
		return CheckRequest{}, err
	}
	if err = checkText("app_id", r.AppID, true, MaxAppIDLen); err != nil {
		return CheckRequest{}, err
	}
	if r.Flow, err = checkEnum("flow", at(ckFlow), optionalFlows, false); err != nil {
		return CheckRequest{}, err
	}
	if r.Carrier, err = checkEnum("carrier", at(ckCarrier), carriers, false); err != nil {
		return CheckRequest{}, err
	}
	if r.Platform, err = checkEnum("platform", at(ckPlatform), platforms, false); err != nil {
		return CheckRequest{}, err
	}
	if err = checkText("device_id", r.DeviceID, false, MaxDeviceIDLen); err != nil {
		return CheckRequest{}, err
	}
	if digestOK {
		r.TokenDigest = at(ckTokenDigest)
	} else if r.TokenDigest, err = NormalizeTokenDigest(at(ckTokenDigest)); err != nil {
		return CheckRequest{}, err
	}
	if err = checkText("ex_id", r.ExID, false, MaxExIDLen); err != nil {
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
