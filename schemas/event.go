package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SchemaMajor and SchemaMinor are the VerifyEvent version this build understands. An event whose
// `schema` names a newer minor version (1.1, 1.2, …) may carry fields this build does not know;
// they are ignored instead of rejected.
const (
	SchemaMajor = 1
	SchemaMinor = 0
)

// Flows, outcomes, carriers and platforms accepted on the wire.
const (
	FlowOneClickLogin = "one_click_login"
	FlowNumberVerify  = "number_verify"
	FlowH5QuickLogin  = "h5_quick_login"
	FlowSMSFallback   = "sms_fallback"

	OutcomeSuccess = "success"
	OutcomeFail    = "fail"

	CarrierMobile  = "CM"
	CarrierUnicom  = "CU"
	CarrierTelecom = "CT"
)

var (
	flows     = []string{FlowOneClickLogin, FlowNumberVerify, FlowH5QuickLogin, FlowSMSFallback}
	outcomes  = []string{OutcomeSuccess, OutcomeFail}
	carriers  = []string{"", CarrierMobile, CarrierUnicom, CarrierTelecom}
	platforms = []string{"", "android", "ios", "harmony", "h5", "web"}
)

// Field length limits of VerifyEvent v1.
const (
	MaxEventIDLen   = 64
	MaxAppIDLen     = 64
	MaxDeviceIDLen  = 128
	MaxErrorCodeLen = 32
	MaxExIDLen      = 128
	// MaxDecisionIDLen bounds decision_id: the id of the /v1/risk/check verdict the attempt
	// followed (the API's are at most 42 bytes).
	MaxDecisionIDLen = 64
)

// VerifyEvent is one phone-number verification (VerifyEvent v1). Values returned by DecodeEvent are
// validated and normalized: Phone holds bare digits (no +86), TokenDigest is lower-case hex, IP is
// unmapped. Marshalling it with encoding/json yields a valid v1 document.
type VerifyEvent struct {
	EventID     string     `json:"event_id"`
	TS          time.Time  `json:"ts"`
	AppID       string     `json:"app_id"`
	Flow        string     `json:"flow"`
	Phone       string     `json:"phone"`
	IP          netip.Addr `json:"ip"`
	Carrier     string     `json:"carrier,omitempty"`
	Platform    string     `json:"platform,omitempty"`
	DeviceID    string     `json:"device_id,omitempty"`
	Outcome     string     `json:"outcome"`
	ErrorCode   string     `json:"error_code,omitempty"`
	TokenDigest string     `json:"token_digest,omitempty"`
	ExID        string     `json:"ex_id,omitempty"`
	// DecisionID is the `id` of the /v1/risk/check verdict this attempt followed, if the caller
	// kept it: analysts join risk_decisions to verify_events on it.
	DecisionID string `json:"decision_id,omitempty"`
}

// wireEvent is the JSON shape before validation. Its strings are views of decoded text, not yet
// checked; ts is the member's JSON text (a view of the document: not to be kept), and when that
// is a string, tsText its decoded text or tsWhy why it is not valid Unicode.
type wireEvent struct {
	Schema      string
	EventID     string
	TS          []byte
	tsText      string
	tsWhy       string
	digestOK    bool // TokenDigest is 64 hex digits, already in lower case
	AppID       string
	Flow        string
	Phone       string
	IP          string
	Carrier     string
	Platform    string
	DeviceID    string
	Outcome     string
	ErrorCode   string
	TokenDigest string
	ExID        string
	DecisionID  string
}

// The members of VerifyEvent v1, in eventMembers.names order.
const (
	evSchema = iota
	evEventID
	evTS
	evAppID
	evFlow
	evPhone
	evIP
	evCarrier
	evPlatform
	evDeviceID
	evOutcome
	evErrorCode
	evTokenDigest
	evExID
	evDecisionID
)

var eventMembers = newFieldSet([]string{"schema", "event_id", "ts", "app_id", "flow", "phone", "ip",
	"carrier", "platform", "device_id", "outcome", "error_code", "token_digest", "ex_id", "decision_id"}, eventMember, evTS)

func eventMember(name []byte) int {
	switch string(name) {
	case "schema":
		return evSchema
	case "event_id":
		return evEventID
	case "ts":
		return evTS
	case "app_id":
		return evAppID
	case "flow":
		return evFlow
	case "phone":
		return evPhone
	case "ip":
		return evIP
	case "carrier":
		return evCarrier
	case "platform":
		return evPlatform
	case "device_id":
		return evDeviceID
	case "outcome":
		return evOutcome
	case "error_code":
		return evErrorCode
	case "token_digest":
		return evTokenDigest
	case "ex_id":
		return evExID
	case "decision_id":
		return evDecisionID
	}
	return -1
}

// decodeBufSize bounds the decoded text of the known members of a valid document (but for a ts
// with a very long fraction), held on the stack until it becomes the one string its fields share;
// longer text costs one more allocation.
const decodeBufSize = 640

// DecodeEvent decodes and validates one VerifyEvent v1 JSON object. Unknown fields are rejected
// unless `schema` names a newer minor version. Errors are *FieldError.
//
// The event's strings share one allocation, which holds the decoded text of the document's known
// members (a few hundred bytes), and none refers to data: the caller may reuse data as soon as
// DecodeEvent returns.
func DecodeEvent(data []byte) (VerifyEvent, error) {
	var stack [decodeBufSize]byte
	var vals objectValues
	buf, scan, err := decodeObject(data, eventMembers, &vals, stack[:0])
	if err != nil {
		return VerifyEvent{}, err
	}
	digestOK := lowerHexDigest(buf, vals.text[evTokenDigest])
	text := string(buf) // the one copy: every string below is part of it
	at := func(k int) string { return text[vals.text[k].start:vals.text[k].end] }
	w := wireEvent{
		Schema: at(evSchema), EventID: at(evEventID), AppID: at(evAppID), Flow: at(evFlow),
		Phone: at(evPhone), IP: at(evIP), Carrier: at(evCarrier), Platform: at(evPlatform),
		DeviceID: at(evDeviceID), Outcome: at(evOutcome), ErrorCode: at(evErrorCode),
		TokenDigest: at(evTokenDigest), ExID: at(evExID), DecisionID: at(evDecisionID),
		TS: data[vals.rawJSON.start:vals.rawJSON.end], tsText: text[vals.rawText.start:vals.rawText.end],
		tsWhy: vals.rawWhy, digestOK: digestOK,
	}
	if err := checkVersion(scan, w.Schema); err != nil {
		return VerifyEvent{}, err
	}
	return w.validate()
}

// lowerHexDigest lower-cases the text at s in buf and reports true if it is a well-formed token
// digest (64 hex digits): what NormalizeTokenDigest would return, made in place instead of in a
// copy. Anything else stays as it is, for NormalizeTokenDigest to refuse with the value as sent.
func lowerHexDigest(buf []byte, s span) bool {
	d := buf[s.start:s.end]
	if len(d) != 64 {
		return false
	}
	var low [64]byte
	for i, c := range d {
		if low[i] = hexLower[c]; low[i] == 0 {
			return false
		}
	}
	copy(d, low[:])
	return true
}

// hexLower is a hex digit in lower case, 0 for any other byte.
var hexLower = func() (t [256]byte) {
	for _, c := range "0123456789abcdef" {
		t[c] = byte(c)
	}
	for _, c := range "ABCDEF" {
		t[c] = byte(c) + 'a' - 'A'
	}
	return t
}()

// DecodeEvents decodes the body of POST /v1/events: one event object or an array of them. Field
// names in errors carry the index: `[3].ip: …`.
func DecodeEvents(data []byte) ([]VerifyEvent, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &FieldError{Reason: "body is empty: expected an event object or an array of events"}
	}
	if startsWithBOM(trimmed) {
		return nil, errBOM
	}
	if trimmed[0] != '[' {
		ev, err := DecodeEvent(data)
		if err != nil {
			return nil, err
		}
		return []VerifyEvent{ev}, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, NamedSyntaxError(data, err)
	}
	if len(raws) == 0 {
		return nil, &FieldError{Reason: "the array holds no events"}
	}
	out := make([]VerifyEvent, 0, len(raws))
	for i, raw := range raws {
		ev, err := DecodeEvent(raw)
		if err != nil {
			fe, _ := AsFieldError(err)
			return nil, &FieldError{Field: fmt.Sprintf("[%d]%s", i, dotted(fe.Field)), Reason: fe.Reason}
		}
		out = append(out, ev)
	}
	return out, nil
}

// NamedSyntaxError is the *FieldError for err, encoding/json's error for data, an object or an
// array of objects (events, labels, the admin API's bodies): where the text stops being JSON
// inside an element, the error names the element, and the member in whose value it does, as
// DecodeEvent names the member of a single event — "[3].device_id: invalid JSON at byte 412:
// invalid character '\t' in string literal" — where it named only a byte offset in a batch of a
// thousand; in the phone's value it quotes nothing of the text.
func NamedSyntaxError(data []byte, err error) error {
	fe, ok := jsonError(err).(*FieldError)
	if !ok || fe.Field != "" {
		return jsonError(err)
	}
	at := int64(-1)
	if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
		at = se.Offset
	}
	// rel is at as an offset of data[start:].
	rel := func(start int) int64 {
		if at < 0 {
			return -1
		}
		return at - int64(start)
	}
	if i := skipSpace(data, 0); i < len(data) && data[i] == '{' {
		if name, ok := failingMember(data[i:], rel(i)); ok {
			return &FieldError{Field: ShowName(name, maxShownName), Reason: memberSyntaxReason(name, fe.Reason)}
		}
		return fe
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, terr := dec.Token(); terr != nil || t != json.Delim('[') {
		return fe
	}
	for i := 0; dec.More(); i++ {
		prev := int(dec.InputOffset())
		var raw json.RawMessage
		if dec.Decode(&raw) == nil {
			continue
		}
		start := skipSpace(data, prev)
		if i > 0 {
			if start >= len(data) || data[start] != ',' {
				return fe // a comma missing between elements: no element's fault
			}
			start = skipSpace(data, start+1)
		}
		if start == len(data) || at >= 0 && at < int64(start) {
			return fe // the text ends before the element, or stops being JSON before it
		}
		field, reason := fmt.Sprintf("[%d]", i), fe.Reason
		if name, ok := failingMember(data[start:], rel(start)); ok {
			field, reason = field+"."+ShowName(name, maxShownName), memberSyntaxReason(name, reason)
		}
		return &FieldError{Field: field, Reason: reason}
	}
	return fe
}

// memberSyntaxReason is reason, encoding/json's account of where the text stops being JSON, for
// the member name; for the phone's, none of it: the character it quotes may be the number's, and
// its offset and escapes ("'\u0083'") are digits beside the number's name, which the phone's
// errors never show (NormalizePhone's give counts and positions only).
func memberSyntaxReason(name, reason string) string {
	if name == "phone" {
		return "invalid JSON: its value stops being JSON (send the number as a JSON string)"
	}
	return reason
}

// failingMember is the name of the member of obj (the text of an object, from its '{') in whose
// value, after its name and colon, the text stops being JSON: a value that does not decode (at
// offset at of obj, or at its end when at is -1), or one that holds offset at (one nested deeper
// than encoding/json takes in the whole text).
func failingMember(obj []byte, at int64) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	for {
		start := dec.InputOffset()
		t, err := dec.Token()
		if _, isKey := t.(string); err != nil || !isKey {
			return "", false
		}
		end := dec.InputOffset()
		j := skipSpace(obj, int(end))
		if j >= len(obj) || obj[j] != ':' {
			return "", false
		}
		vstart := int64(skipSpace(obj, j+1))
		var v json.RawMessage
		if dec.Decode(&v) == nil && !(at > vstart && at <= dec.InputOffset()) {
			continue
		}
		if at >= 0 && at < vstart {
			return "", false
		}
		name, why := jsonString(bytes.TrimLeft(obj[start:end], " \t\r\n,"))
		return name, why == "" && name != ""
	}
}

func dotted(field string) string {
	if field == "" {
		return ""
	}
	return "." + field
}

// checkVersion decides on what decodeObject found, now that the `schema` member is known: an
// unknown field is refused unless schema names a newer minor version; the first bad member is
// refused in any case; a bad schema is refused.
func checkVersion(scan objectScan, schema string) error {
	if scan.err != nil && (scan.unknown == nil || scan.errFirst) {
		return scan.err
	}
	minor, perr := schemaMinor(schema)
	if scan.unknown != nil {
		// Unknown field: tolerated only when the producer declares a newer minor version.
		if perr != nil {
			return perr
		}
		if minor <= SchemaMinor {
			return scan.unknownErr()
		}
	}
	if scan.err != nil {
		return scan.err
	}
	return perr
}

// schemaMinor parses "1", "1.0", "1.3" (the minor version is 1 to 9 digits); "" means this build's
// version.
func schemaMinor(s string) (int, error) {
	if s == "" {
		return SchemaMinor, nil
	}
	major, minor, hasMinor := strings.Cut(s, ".")
	if major != strconv.Itoa(SchemaMajor) {
		return 0, fieldErr("schema", "%s is not a supported version: this build reads %d.x", Excerpt(s, 24), SchemaMajor)
	}
	if !hasMinor {
		return 0, nil
	}
	// Digits only (Atoi alone would take "+1" and "-0"), at most 9 of them (no overflow anywhere).
	if len(minor) == 0 || len(minor) > 9 || strings.Trim(minor, "0123456789") != "" {
		return 0, fieldErr("schema", "%s is not a version of the form 1.N", Excerpt(s, 24))
	}
	n, _ := strconv.Atoi(minor)
	return n, nil
}

// jsonError turns encoding/json errors into FieldErrors.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &FieldError{Reason: fmt.Sprintf("expected a JSON object, got %s", te.Value)}
		}
		return fieldErr(field, "must be %s, got %s", JSONKind(te.Type), te.Value)
	case errors.As(err, &se):
		return &FieldError{Reason: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Reason: "invalid JSON: unexpected end of input"}
	}
	// encoding/json names an unknown member (DisallowUnknownFields) only in its text. The name is
	// the caller's: shown short, escaped, a number in it masked — as the one-pass decoder does.
	if q, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, uerr := strconv.Unquote(q); uerr == nil {
			return &FieldError{Field: ShowName(name, maxShownName), Reason: "unknown field"}
		}
	}
	// A value's own UnmarshalJSON quotes what it refused ("parsing time \"13812345678\" as …"; a
	// time of UnmarshalJSON's callers not among its timeFields, one nested in a report): shown as
	// every value an error shows, masked.
	if pe := (*time.ParseError)(nil); errors.As(err, &pe) {
		return &FieldError{Reason: Excerpt(pe.Value, 40) + " is not an RFC 3339 time"}
	}
	return &FieldError{Reason: "invalid JSON: " + MaskPhones(strings.TrimPrefix(err.Error(), "json: "))}
}

// JSONKind is what a value of Go type t is in JSON, with its article, for errors worded "must be
// a string, got number": a string, a boolean, a number, an array, an object.
func JSONKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

func (w *wireEvent) validate() (VerifyEvent, error) {
	ev := VerifyEvent{
		EventID:    w.EventID,
		AppID:      w.AppID,
		DeviceID:   w.DeviceID,
		ErrorCode:  w.ErrorCode,
		ExID:       w.ExID,
		DecisionID: w.DecisionID,
	}
	var err error
	if err = checkText("event_id", w.EventID, true, MaxEventIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.TS, err = parseTS(w.TS, w.tsText, w.tsWhy); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("app_id", w.AppID, true, MaxAppIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Flow, err = checkEnum("flow", w.Flow, flows, true); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Phone, err = NormalizePhone(w.Phone); err != nil {
		return VerifyEvent{}, err
	}
	if ev.IP, err = ParseIP(w.IP); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Carrier, err = checkEnum("carrier", w.Carrier, carriers, false); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Platform, err = checkEnum("platform", w.Platform, platforms, false); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("device_id", w.DeviceID, false, MaxDeviceIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Outcome, err = checkEnum("outcome", w.Outcome, outcomes, true); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("error_code", w.ErrorCode, false, MaxErrorCodeLen); err != nil {
		return VerifyEvent{}, err
	}
	if w.digestOK {
		ev.TokenDigest = w.TokenDigest
	} else if ev.TokenDigest, err = NormalizeTokenDigest(w.TokenDigest); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("ex_id", w.ExID, false, MaxExIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("decision_id", w.DecisionID, false, MaxDecisionIDLen); err != nil {
		return VerifyEvent{}, err
	}
	return ev, nil
}

// MaxClockSkew is how far in the future an event's ts may be when it is ingested (CheckNotFuture).
const MaxClockSkew = 5 * time.Minute

// CheckNotFuture rejects an event stamped more than skew after now: a wrong clock or unit on the
// producer, or a forged event, must not move event-time windows into the future. now is this
// node's clock, named in the error: a node whose own clock runs behind refuses live events.
func CheckNotFuture(ev *VerifyEvent, now time.Time, skew time.Duration) error {
	if ahead := ev.TS.Sub(now); ahead > skew {
		return fieldErr("ts", "%s is %s in the future of this node's clock, %s (allowed clock skew %s): is the producer's clock ahead, or this node's behind (check its NTP)?",
			ev.TS.Format(time.RFC3339), ahead.Round(time.Second), now.UTC().Format(time.RFC3339), skew)
	}
	return nil
}

// Timestamps outside [minTS, maxTS] are rejected: almost always a unit mistake (seconds for ms).
var (
	minTS = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTS = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTS reads the ts member: raw is its JSON text, and when that is a string, s is its decoded
// text or why why it is not valid Unicode.
func parseTS(raw []byte, s, why string) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, fieldErr("ts", "is required")
	}
	var t time.Time
	if raw[0] == '"' {
		if why != "" {
			return time.Time{}, fieldErr("ts", "%s", why)
		}
		var ok bool
		if t, ok = parseRFC3339(s); !ok {
			return time.Time{}, fieldErr("ts", "%s is not an RFC 3339 time (2006-01-02T15:04:05Z) or unix milliseconds", Excerpt(s, 48))
		}
	} else {
		ms, ok := parseInt64(raw)
		if !ok {
			return time.Time{}, fieldErr("ts", "%s is neither an RFC 3339 string nor an integer of unix milliseconds", shownJSON(raw, 40))
		}
		t = time.UnixMilli(ms)
		if t.Before(minTS) || t.After(maxTS) {
			return time.Time{}, tsOutOfRange(t, unitHint(ms))
		}
	}
	t = t.UTC()
	if t.Before(minTS) || t.After(maxTS) {
		return time.Time{}, tsOutOfRange(t, "")
	}
	return t, nil
}

// tsOutOfRange is the error of a ts outside [minTS, maxTS], with hint (a likely mistake) if any.
func tsOutOfRange(t time.Time, hint string) error {
	if hint != "" {
		hint = " (" + hint + ")"
	}
	// Masked as every value an error shows: a year of seven digits and more, from an integer ts
	// far out (40000000000000000 is 1269519-07-17), reads as a phone number (FuzzDecodeEvent).
	return fieldErr("ts", "%s is outside 2000..2100%s", MaskPhones(t.UTC().Format(time.RFC3339Nano)), hint)
}

// unitHint names the unit mistake that would put ms, an integer ts out of range, in range: unix
// seconds, microseconds or nanoseconds sent for milliseconds; "" when none does.
func unitHint(ms int64) string {
	in := func(t time.Time) bool { return !t.Before(minTS) && !t.After(maxTS) }
	switch {
	case in(time.Unix(ms, 0)):
		return "unix seconds sent as milliseconds?"
	case in(time.UnixMicro(ms)):
		return "unix microseconds sent as milliseconds?"
	case in(time.Unix(0, ms)):
		return "unix nanoseconds sent as milliseconds?"
	}
	return ""
}

// parseRFC3339 reads an RFC 3339 (section 5.6) date-time in UTC: YYYY-MM-DDTHH:MM:SS, an
// optional fraction, then Z or ±HH:MM; T and Z in either case. It takes exactly what
// time.Parse(time.RFC3339Nano, strings.ToUpper(s)) took of those (a real date, hours 0-23, minutes
// and seconds 0-59, at most 9 fraction digits counted, more ignored), and gives the same instant,
// without the allocations (the fixed zone of an offset, the upper-case copy). time.Parse alone is
// looser: it also takes "T3:04:05", "05,123" and "+24:00". decode_diff_test.go compares the two.
func parseRFC3339(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10]|0x20 != 't' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	var d [14]int // the digits of the date and time
	for k, at := range [14]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if d[k] = int(s[at] - '0'); d[k] > 9 {
			return time.Time{}, false
		}
	}
	year := d[0]*1000 + d[1]*100 + d[2]*10 + d[3]
	month, day := d[4]*10+d[5], d[6]*10+d[7]
	hour, minute, sec := d[8]*10+d[9], d[10]*10+d[11], d[12]*10+d[13]
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if rest[0] == '.' {
		n := 1
		for ; n < len(rest) && isDigitByte(rest[n]); n++ {
			if n <= 9 {
				nsec = nsec*10 + int(rest[n]-'0')
			}
		}
		if n == 1 {
			return time.Time{}, false
		}
		for k := n; k <= 9; k++ {
			nsec *= 10
		}
		rest = rest[n:]
	}
	unix := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	switch {
	case len(rest) == 1 && rest[0]|0x20 == 'z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		h1, h2, m1, m2 := rest[1]-'0', rest[2]-'0', rest[4]-'0', rest[5]-'0'
		if h1 > 9 || h2 > 9 || m1 > 9 || m2 > 9 || h1*10+h2 > 23 || m1*10+m2 > 59 {
			return time.Time{}, false
		}
		offset := int64(h1*10+h2)*3600 + int64(m1*10+m2)*60
		if rest[0] == '-' {
			offset = -offset
		}
		unix -= offset
	default:
		return time.Time{}, false
	}
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// daysSinceEpoch is the number of days from 1970-01-01 to the given date (proleptic Gregorian,
// month 1-12), negative before it.
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y-- // count years from March, so that a leap day ends the year
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400                               // [0, 399]
	doy := int64((153*((month+9)%12)+2)/5 + day - 1) // [0, 365], from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy           // [0, 146096]
	return era*146097 + doe - 719468                 // 719468: 0000-03-01 to 1970-01-01
}

// daysIn is the number of days of month (1-12) in year, proleptic Gregorian as in package time.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseInt64 is strconv.ParseInt(string(b), 10, 64) without the error value (nor its
// allocations): an optional sign and decimal digits, within the range of int64.
func parseInt64(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var n uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return int64(-n), true
	}
	return int64(n), true
}

// checkText checks a free-text field: an id or a code. Besides length and characters, it refuses a
// value holding a phone number: riskflow stores these fields as they are (ClickHouse, risk.scores,
// the exID it answers with), and promises that phone numbers exist there only as keyed hashes.
func checkText(field, v string, required bool, maxLen int) error {
	if v == "" {
		if required {
			return fieldErr(field, "is required")
		}
		return nil
	}
	if len(v) > maxLen {
		return fieldErr(field, "is %d bytes long, the limit is %d", len(v), maxLen)
	}
	// v is valid UTF-8 (jsonString refuses anything else), where every byte below 0x80 is an
	// ASCII character: one pass over the bytes finds control characters, and tells whether the
	// exact (slower) phone scan is needed.
	seen, longest := quickScan(v)
	if seen&byteControl != 0 {
		return fieldErr(field, "contains a control character")
	}
	if quickMayHold(v, seen, longest) && exactPhoneScan(v, written) {
		return fieldErr(field, "looks like it contains a mobile phone number; send an opaque id (riskflow never stores phone numbers in plaintext)")
	}
	if seen&byteAlnum == 0 && isBlank(v) {
		return fieldErr(field, blankReason)
	}
	return nil
}

// blankReason refuses an id that shows nothing: every event sending " " as its device id would
// count as one device (a farm of every number), and " " as an event id as one event.
const blankReason = "is blank (only spaces or invisible characters): leave it out, or send a real value"

// isBlank reports whether s, not empty, is only white space and characters that show nothing:
// format characters (zero-width spaces and joiners, soft hyphens, direction marks, BOM),
// variation selectors and the blank letters and symbols (Hangul fillers, the braille blank). The
// JSON Schemas state the same set (a test holds them equal).
func isBlank(s string) bool {
	for _, r := range s {
		if !inBlankRanges(r) {
			return false
		}
	}
	return true
}

// blankRanges are the characters isBlank counts as showing nothing, in order.
var blankRanges = [][2]rune{
	{'\t', '\r'}, {' ', ' '}, {'\u0085', '\u0085'}, {'\u00a0', '\u00a0'}, {'\u00ad', '\u00ad'},
	{'\u034f', '\u034f'}, {'\u061c', '\u061c'}, {'\u115f', '\u1160'}, {'\u1680', '\u1680'},
	{'\u17b4', '\u17b5'}, {'\u180e', '\u180e'}, {'\u2000', '\u200f'}, {'\u2028', '\u202f'},
	{'\u205f', '\u2064'}, {'\u2066', '\u206f'}, {'\u2800', '\u2800'}, {'\u3000', '\u3000'},
	{'\u3164', '\u3164'}, {'\ufe00', '\ufe0f'}, {'\ufeff', '\ufeff'}, {'\uffa0', '\uffa0'},
}

func inBlankRanges(r rune) bool {
	for _, b := range blankRanges {
		if r < b[0] {
			return false
		}
		if r <= b[1] {
			return true
		}
	}
	return false
}

// CheckID checks an optional id or name a caller names outside an event — the app of an
// investigation, an app key or admin name in the configuration, a command-line flag — as an
// event's free-text fields are checked (length, no control characters, no phone number), and
// refuses an invisible format character (Unicode Cf: the byte order mark U+FEFF, zero-width
// spaces and joiners, direction marks, the soft hyphen): an app key "shop\ufeff", copied with a
// file's BOM, shows as "shop" and matches no app_id anyone types. Errors are *FieldError naming
// field. A device id is checked by CheckDeviceID.
func CheckID(field, v string, maxLen int) error {
	if err := checkText(field, v, false, maxLen); err != nil {
		return err
	}
	return checkNoFormatChar(field, v)
}

// CheckDeviceID checks an optional device id a caller names outside an event (an investigation,
// a list entry, a command-line flag) exactly as an event's device_id is checked: invisible
// characters are allowed, as events carry them and device keys leave them out (a device id
// "rig\u200b01" is the device rig01).
func CheckDeviceID(field, v string, maxLen int) error { return checkText(field, v, false, maxLen) }

// checkNoFormatChar refuses v if it holds a character of Unicode category Cf, naming it and where.
func checkNoFormatChar(field, v string) error {
	for i, r := range v {
		if r >= utf8.RuneSelf && unicode.Is(unicode.Cf, r) {
			return fieldErr(field, "contains the invisible format character U+%04X at byte %d: leave it out", r, i)
		}
	}
	return nil
}

// checkEnum checks that v is one of allowed ("" among them for an optional field) and returns
// the allowed string itself, which refers to nothing of the document.
func checkEnum(field, v string, allowed []string, required bool) (string, error) {
	if v == "" && required {
		return "", fieldErr(field, "is required (one of %s)", strings.Join(allowed, ", "))
	}
	for _, a := range allowed {
		if v == a {
			return a, nil
		}
	}
	shown := make([]string, 0, len(allowed))
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return "", fieldErr(field, "%s is not one of %s", Excerpt(v, 40), strings.Join(shown, ", "))
}

// NormalizePhone accepts an 11-digit mainland mobile number (1xxxxxxxxxx), optionally prefixed by
// "+86" or "86", or a 13-digit IoT number (14xxxxxxxxxxx), and returns the bare digits.
//
// Its errors never show the value, not even in part: they say what is wrong with it (which kind
// of character where, how many digits, which prefix).
func NormalizePhone(s string) (string, error) {
	if s == "" {
		return "", fieldErr("phone", "is required")
	}
	d, prefix := s, 0
	if strings.HasPrefix(d, "+86") {
		d, prefix = d[3:], 3
	} else if strings.HasPrefix(d, "86") && len(d) == 13 {
		d, prefix = d[2:], 2
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", fieldErr("phone", "is not a mainland mobile number: %s at position %d; only ASCII digits may follow the optional +86", charKind(d[i]), prefix+i+1)
		}
	}
	switch {
	case len(d) == 11 && d[0] == '1':
		return d, nil
	case len(d) == 13 && d[0] == '1' && d[1] == '4':
		return d, nil // IoT numbering (14x, 13 digits)
	case prefix == 0 && strings.HasPrefix(d, "0086"):
		return "", fieldErr("phone", "is not a mainland mobile number: it starts with the international prefix 00; write +86 or no prefix")
	case d != "" && d[0] != '1':
		return "", fieldErr("phone", "is not a mainland mobile number: after the optional +86 it must start with 1 (landlines and other countries are not accepted)")
	}
	return "", fieldErr("phone", "is not a mainland mobile number: %d digits after the optional +86, expected 11 (or 13 for a 14x IoT number)", len(d))
}

// charKind names the kind of a character a phone number must not contain, without showing it.
func charKind(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c == '-' || c == '.' || c == '(' || c == ')' || c == '+':
		return "a separator ('-', '.', '(', ')' or '+')"
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return "a letter"
	case c >= 0x80:
		return "a non-ASCII character (full-width digits?)"
	case c < 0x20 || c == 0x7f:
		return "a control character"
	}
	return "a punctuation character"
}

// ipHint says what an ip that does not parse holds instead of one address, when it is one of the
// usual mistakes: a list (an X-Forwarded-For header as it came), a port, blanks around it.
func ipHint(s string) string {
	t := strings.TrimSpace(s)
	if strings.Contains(t, ",") {
		return ": a list (an X-Forwarded-For header as it came?): send the one address the login came from"
	}
	if _, err := netip.ParseAddr(t); err == nil && t != s {
		return ": blanks around it: send the address alone"
	}
	if _, err := netip.ParseAddrPort(t); err == nil {
		return ": it holds a port: send the address alone"
	}
	if len(t) > 2 && t[0] == '[' && t[len(t)-1] == ']' {
		if _, err := netip.ParseAddr(t[1 : len(t)-1]); err == nil {
			return ": in brackets (as a URL writes it): send the address alone"
		}
	}
	return ""
}

// ParseIP parses an IPv4 or IPv6 address (no zone); IPv4-mapped IPv6 becomes IPv4.
func ParseIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fieldErr("ip", "is required")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fieldErr("ip", "%s is not an IP address%s", Excerpt(s, 48), ipHint(s))
	}
	if a.Zone() != "" {
		// fe80::1%eth0: a link-local address as the client's host names it, never a client's
		// address as the verify service sees it.
		return netip.Addr{}, fieldErr("ip", "%s has a zone (after %%): send the address without it", Excerpt(s, 48))
	}
	a = a.Unmap()
	if kind := notAClient(a); kind != "" {
		// A verify service that sends its own, its proxy's or a placeholder address puts every
		// user behind one IP: per-IP rules would flag them all, and the IP tells nothing.
		return netip.Addr{}, fieldErr("ip", "%s is %s, never a client's address: send the address the login came from (behind a proxy, the client's from X-Forwarded-For)", a, kind)
	}
	return a, nil
}

// notAClient names the kind of a that no login comes from ("" for any other address).
func notAClient(a netip.Addr) string {
	// Most addresses are told apart by their first byte: with this, BenchmarkDecodeEvent counts 40
	// instructions more per event than without the check (of 13,739, cachegrind); 129 without it.
	if a.Is4() {
		if b := a.As4()[0]; b != 0 && b != 127 && b != 169 && b < 224 {
			return ""
		}
	} else if b := a.As16()[0]; b != 0 && b != 0xfe && b != 0xff {
		return ""
	}
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsMulticast():
		return "a multicast address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	case a.Is4() && a.As4()[0] == 0:
		// RFC 1122: a host may send from 0.0.0.0/8 only while it learns its own address.
		return "in 0.0.0.0/8 (this network)"
	case a.Is4() && a.As4()[0] >= 240:
		return "in 240.0.0.0/4 (reserved)"
	}
	return ""
}

// NormalizeTokenDigest accepts "" or the 64-hex-digit SHA-256 of a loginToken.
func NormalizeTokenDigest(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) != 64 {
		return "", fieldErr("token_digest", "is %d characters long: expected the 64 hex digits of a SHA-256", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fieldErr("token_digest", "is not hexadecimal (character %d is %q)", i, c)
		}
	}
	return strings.ToLower(s), nil
}

// shownJSON is a JSON value as an error message shows it: on one line, valid UTF-8, phone
// numbers masked, at most about n bytes.
func shownJSON(raw []byte, n int) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		raw = b.Bytes()
	}
	out, cut := redact(nil, strings.ToValidUTF8(string(raw), "\uFFFD"), n)
	if cut {
		out = append(out, "…"...)
	}
	return string(out)
}
