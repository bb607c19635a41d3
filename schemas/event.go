package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
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
}

// wireEvent is the JSON shape before validation.
type wireEvent struct {
	Schema      string          `json:"schema"`
	EventID     string          `json:"event_id"`
	TS          json.RawMessage `json:"ts"`
	AppID       string          `json:"app_id"`
	Flow        string          `json:"flow"`
	Phone       string          `json:"phone"`
	IP          string          `json:"ip"`
	Carrier     string          `json:"carrier"`
	Platform    string          `json:"platform"`
	DeviceID    string          `json:"device_id"`
	Outcome     string          `json:"outcome"`
	ErrorCode   string          `json:"error_code"`
	TokenDigest string          `json:"token_digest"`
	ExID        string          `json:"ex_id"`
}

// DecodeEvent decodes and validates one VerifyEvent v1 JSON object. Unknown fields are rejected
// unless `schema` names a newer minor version. Errors are *FieldError.
func DecodeEvent(data []byte) (VerifyEvent, error) {
	var w wireEvent
	if err := decodeStrict(data, &w); err != nil {
		return VerifyEvent{}, err
	}
	return w.validate()
}

// DecodeEvents decodes the body of POST /v1/events: one event object or an array of them. Field
// names in errors carry the index: `[3].ip: …`.
func DecodeEvents(data []byte) ([]VerifyEvent, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &FieldError{Reason: "body is empty: expected an event object or an array of events"}
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
		return nil, jsonError(err)
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

func dotted(field string) string {
	if field == "" {
		return ""
	}
	return "." + field
}

// decodeStrict decodes one JSON object into w, rejecting unknown fields unless w's `schema` names a
// newer minor version, and rejecting trailing data.
func decodeStrict(data []byte, w *wireEvent) error {
	scan, err := decodeObject(data, w.members())
	if err != nil {
		return err
	}
	if scan.err != nil && (scan.unknown == nil || scan.errFirst) {
		return scan.err
	}
	minor, perr := schemaMinor(w.Schema)
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

func (w *wireEvent) members() []member {
	return []member{
		{"schema", &w.Schema}, {"event_id", &w.EventID}, {"ts", &w.TS}, {"app_id", &w.AppID},
		{"flow", &w.Flow}, {"phone", &w.Phone}, {"ip", &w.IP}, {"carrier", &w.Carrier},
		{"platform", &w.Platform}, {"device_id", &w.DeviceID}, {"outcome", &w.Outcome},
		{"error_code", &w.ErrorCode}, {"token_digest", &w.TokenDigest}, {"ex_id", &w.ExID},
	}
}

// member is one known field of a flat JSON object and where its value goes: a *string (null leaves
// it empty) or a *json.RawMessage.
type member struct {
	name string
	dst  any
}

// objectScan is what decodeObject found besides the values it stored.
type objectScan struct {
	unknown  *string // name of the first member that is not a known field, nil if none
	err      error   // first member with a value of the wrong type, or given twice
	errFirst bool    // err comes before the unknown member in the document
}

func (s objectScan) unknownErr() error {
	if *s.unknown == "" {
		return &FieldError{Reason: `unknown field ""`}
	}
	// The name is the caller's: shortened (one real answer was 174,800 bytes long), escaped,
	// and with any phone number masked.
	return &FieldError{Field: ShowName(*s.unknown, maxShownName), Reason: "unknown field"}
}

// maxShownName is how much of an unknown member name an error shows.
const maxShownName = 40

// fail records err as the scan's error unless an earlier member already failed.
func (s *objectScan) fail(err *FieldError) {
	if s.err == nil {
		s.err = err
		s.errFirst = s.unknown == nil
	}
}

// decodeObject decodes one flat JSON object into members and rejects trailing data. Syntax errors
// and a document that is not an object are returned as the error; unknown and bad members are
// reported in the objectScan, so the caller can decide after seeing every member (`schema` may come
// last).
//
// Names match exactly. encoding/json alone would also take "PHONE" or "Phone" for phone, letting a
// later spelling override an earlier one, while JSON Schema and most other decoders treat those as
// different (unknown) members; a member given twice is refused for the same reason.
func decodeObject(data []byte, members []member) (objectScan, error) {
	var scan objectScan
	if !json.Valid(data) {
		return scan, syntaxError(data)
	}
	// From here on data is one valid JSON value, so the scanning below needs no error checks.
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return scan, &FieldError{Reason: "expected a JSON object, got " + valueKind(data[i])}
	}
	var seen uint64
	for i = skipSpace(data, i+1); data[i] != '}'; {
		end := skipString(data, i)
		rawKey := data[i:end]
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		vend := skipValue(data, i)
		value := data[i:vend]
		if i = skipSpace(data, vend); data[i] == ',' {
			i = skipSpace(data, i+1)
		}

		k := lookupMember(members, rawKey)
		if k < 0 {
			scan.unknownMember(rawKey, value)
			continue
		}
		name := members[k].name
		if seen&(1<<k) != 0 {
			scan.fail(fieldErr(name, "appears more than once"))
			continue
		}
		seen |= 1 << k
		switch dst := members[k].dst.(type) {
		case *json.RawMessage:
			*dst = value
		case *string:
			switch value[0] {
			case '"':
				var why string
				if *dst, why = jsonString(value); why != "" {
					scan.fail(fieldErr(name, "%s", why))
				}
			case 'n': // null: same as absent
			default:
				scan.fail(fieldErr(name, "must be a string, got %s", valueKind(value[0])))
			}
		}
	}
	return scan, nil
}

// unknownMember notes a member that is not a known field. Whether it is refused depends on the
// `schema` member, which may come later; text that is not valid UTF-8 is refused whatever the
// version, in its name or anywhere in its value (JSON text is UTF-8, RFC 8259 section 8.1).
func (s *objectScan) unknownMember(rawKey, value []byte) {
	name, why := jsonString(rawKey)
	if why != "" {
		s.fail(&FieldError{Reason: "member name " + Excerpt(string(rawKey[1:len(rawKey)-1]), maxShownName) + " " + why})
		return
	}
	if !utf8.Valid(value) {
		s.fail(&FieldError{Field: ShowName(name, maxShownName), Reason: "is not valid UTF-8"})
	}
	if s.unknown == nil {
		s.unknown = &name
	}
}

// syntaxError explains why data is not exactly one JSON value.
func syntaxError(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return jsonError(err)
	}
	return &FieldError{Reason: "unexpected data after the JSON object"}
}

// lookupMember returns the index of the member named exactly by the quoted JSON string rawKey, or -1.
func lookupMember(members []member, rawKey []byte) int {
	name := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		key, _ := jsonString(rawKey)
		for k := range members {
			if members[k].name == key {
				return k
			}
		}
		return -1
	}
	for k := range members {
		if members[k].name == string(name) {
			return k
		}
	}
	return -1
}

// jsonString decodes a quoted JSON string whose syntax json.Valid has checked. If the text is not
// valid Unicode — a byte that is not UTF-8, or a \u escape of half a surrogate pair — it returns
// why, instead of the U+FFFD encoding/json would put there: that substitution makes different
// values equal (three distinct event ids become one), and hides a producer's encoding bug.
func jsonString(raw []byte) (s, why string) {
	inner := raw[1 : len(raw)-1]
	if !utf8.Valid(inner) { // escapes are ASCII: this checks the raw text
		return "", "is not valid UTF-8"
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), ""
	}
	return unescape(inner)
}

// whySurrogate is why a string with half a UTF-16 surrogate pair is refused.
const whySurrogate = "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): not valid Unicode"

// unescape decodes the escapes of a JSON string's valid UTF-8 content.
func unescape(in []byte) (string, string) {
	b := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if in[i] != '\\' {
			b = append(b, in[i])
			i++
			continue
		}
		c := in[i+1]
		i += 2
		switch c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(in[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by an escaped low one.
				if r >= 0xDC00 || i+6 > len(in) || in[i] != '\\' || in[i+1] != 'u' {
					return "", whySurrogate
				}
				if r = utf16.DecodeRune(r, hex4(in[i+2:])); r == utf8.RuneError {
					return "", whySurrogate
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, c)
		}
	}
	return string(b), ""
}

// hex4 reads the 4 hex digits of a \u escape (valid: json.Valid checked them).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// The scanners below take valid JSON (checked by json.Valid first) and a position in it.

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the position just past the string that starts (with its quote) at i.
func skipString(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the position just past the value that starts at i.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(data) && !endsLiteral(data[i]) {
		i++
	}
	return i
}

// endsLiteral reports whether c ends a number, true, false or null.
func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// valueKind names the JSON type of the value whose first byte is c.
func valueKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
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
		return fieldErr(field, "must be a %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return &FieldError{Reason: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Reason: "invalid JSON: unexpected end of input"}
	}
	return &FieldError{Reason: "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return k
}

func (w *wireEvent) validate() (VerifyEvent, error) {
	ev := VerifyEvent{
		EventID:   w.EventID,
		AppID:     w.AppID,
		Flow:      w.Flow,
		Carrier:   w.Carrier,
		Platform:  w.Platform,
		DeviceID:  w.DeviceID,
		Outcome:   w.Outcome,
		ErrorCode: w.ErrorCode,
		ExID:      w.ExID,
	}
	var err error
	if err = checkText("event_id", w.EventID, true, MaxEventIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.TS, err = parseTS(w.TS); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("app_id", w.AppID, true, MaxAppIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkEnum("flow", w.Flow, flows, true); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Phone, err = NormalizePhone(w.Phone); err != nil {
		return VerifyEvent{}, err
	}
	if ev.IP, err = ParseIP(w.IP); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkEnum("carrier", w.Carrier, carriers, false); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkEnum("platform", w.Platform, platforms, false); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("device_id", w.DeviceID, false, MaxDeviceIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkEnum("outcome", w.Outcome, outcomes, true); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("error_code", w.ErrorCode, false, MaxErrorCodeLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.TokenDigest, err = NormalizeTokenDigest(w.TokenDigest); err != nil {
		return VerifyEvent{}, err
	}
	if err = checkText("ex_id", w.ExID, false, MaxExIDLen); err != nil {
		return VerifyEvent{}, err
	}
	return ev, nil
}

// MaxClockSkew is how far in the future an event's ts may be when it is ingested (CheckNotFuture).
const MaxClockSkew = 5 * time.Minute

// CheckNotFuture rejects an event stamped more than skew after now: a wrong clock or unit on the
// producer, or a forged event, must not move event-time windows into the future.
func CheckNotFuture(ev *VerifyEvent, now time.Time, skew time.Duration) error {
	if ahead := ev.TS.Sub(now); ahead > skew {
		return fieldErr("ts", "%s is %s in the future (allowed clock skew %s)", ev.TS.Format(time.RFC3339), ahead.Round(time.Second), skew)
	}
	return nil
}

// Timestamps outside [minTS, maxTS] are rejected: almost always a unit mistake (seconds for ms).
var (
	minTS = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTS = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func parseTS(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, fieldErr("ts", "is required")
	}
	var t time.Time
	if raw[0] == '"' {
		s, why := jsonString(raw) // raw is valid JSON: decodeStrict checked the whole object
		if why != "" {
			return time.Time{}, fieldErr("ts", "%s", why)
		}
		var err error
		if !rfc3339Shape(s) {
			err = errors.New("not RFC 3339")
		} else {
			// The shape check leaves t and z as the only letters; time.Parse wants them upper case.
			t, err = time.Parse(time.RFC3339Nano, strings.ToUpper(s))
		}
		if err != nil {
			return time.Time{}, fieldErr("ts", "%s is not an RFC 3339 time (2006-01-02T15:04:05Z) or unix milliseconds", Excerpt(s, 48))
		}
	} else {
		ms, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return time.Time{}, fieldErr("ts", "%s is neither an RFC 3339 string nor an integer of unix milliseconds", shownJSON(raw, 40))
		}
		t = time.UnixMilli(ms)
	}
	t = t.UTC()
	if t.Before(minTS) || t.After(maxTS) {
		return time.Time{}, fieldErr("ts", "%s is outside 2000..2100 (unix seconds sent as milliseconds?)", t.Format(time.RFC3339))
	}
	return t, nil
}

// rfc3339Shape reports whether s is laid out as an RFC 3339 (section 5.6) date-time:
// YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or ±HH:MM with HH ≤ 23 and MM ≤ 59; T and Z in
// either case. time.Parse alone is looser: it also takes "T3:04:05", "05,123" and "+24:00".
func rfc3339Shape(s string) bool {
	const layout = "0000-00-00T00:00:00"
	if len(s) <= len(layout) {
		return false
	}
	for i := 0; i < len(layout); i++ {
		c := s[i]
		switch layout[i] {
		case '0':
			if c < '0' || c > '9' {
				return false
			}
		case 'T':
			if c != 'T' && c != 't' {
				return false
			}
		default:
			if c != layout[i] {
				return false
			}
		}
	}
	rest := s[len(layout):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	if rest == "Z" || rest == "z" {
		return true
	}
	if len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
		return false
	}
	for _, c := range []byte{rest[1], rest[2], rest[4], rest[5]} {
		if c < '0' || c > '9' {
			return false
		}
	}
	return rest[1:3] <= "23" && rest[4:6] <= "59"
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
	digits, mayBePhone := 0, false
	for i := 0; i < len(v); i++ {
		switch textClass[v[i]] {
		case classControl:
			return fieldErr(field, "contains a control character")
		case classDigit:
			digits++
			mayBePhone = mayBePhone || digits >= 11
		case classSep:
		case classWide:
			mayBePhone = true
		default:
			digits = 0
		}
	}
	if mayBePhone && ContainsPhone(v) {
		return fieldErr(field, "looks like it contains a mobile phone number; send an opaque id (riskflow never stores phone numbers in plaintext)")
	}
	return nil
}

// textClass is phoneClass (see mayHoldPhone) plus the control characters checkText refuses.
var textClass = func() [256]uint8 {
	t := phoneClass
	for c := range 0x20 {
		t[c] = classControl
	}
	t[0x7f] = classControl
	return t
}()

func checkEnum(field, v string, allowed []string, required bool) error {
	if v == "" && required {
		return fieldErr(field, "is required (one of %s)", strings.Join(allowed, ", "))
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	shown := make([]string, 0, len(allowed))
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return fieldErr(field, "%s is not one of %s", Excerpt(v, 40), strings.Join(shown, ", "))
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

// ParseIP parses an IPv4 or IPv6 address (no zone); IPv4-mapped IPv6 becomes IPv4.
func ParseIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fieldErr("ip", "is required")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fieldErr("ip", "%s is not an IP address", Excerpt(s, 48))
	}
	return a.Unmap(), nil
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
