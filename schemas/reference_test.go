package schemas

// The decoder as it was before the single-pass scanner (commit c97ef27): encoding/json's Valid
// for the syntax, a []member table per call, a string per field, time.Parse for ts. Kept here as
// the reference the differential tests (decode_diff_test.go) compare DecodeEvent and
// DecodeCheckRequest with: the same events, and the same errors, word for word.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

func refDecodeEvent(data []byte) (VerifyEvent, error) {
	var w refWireEvent
	if err := refDecodeStrict(data, &w); err != nil {
		return VerifyEvent{}, err
	}
	return w.refValidate()
}

func refDecodeStrict(data []byte, w *refWireEvent) error {
	scan, err := refDecodeObject(data, w.refMembers())
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
			return scan.refUnknownErr()
		}
	}
	if scan.err != nil {
		return scan.err
	}
	return perr
}

type refWireEvent struct {
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
	DecisionID  string          `json:"decision_id"`
}

func (w *refWireEvent) refMembers() []refMember {
	return []refMember{
		{"schema", &w.Schema}, {"event_id", &w.EventID}, {"ts", &w.TS}, {"app_id", &w.AppID},
		{"flow", &w.Flow}, {"phone", &w.Phone}, {"ip", &w.IP}, {"carrier", &w.Carrier},
		{"platform", &w.Platform}, {"device_id", &w.DeviceID}, {"outcome", &w.Outcome},
		{"error_code", &w.ErrorCode}, {"token_digest", &w.TokenDigest}, {"ex_id", &w.ExID},
		{"decision_id", &w.DecisionID},
	}
}

type refMember struct {
	name string
	dst  any
}

type refObjectScan struct {
	unknown  *string // name of the first refMember that is not a known field, nil if none
	err      error   // first refMember with a value of the wrong type, or given twice
	errFirst bool    // err comes before the unknown refMember in the document
}

func (s refObjectScan) refUnknownErr() error {
	if *s.unknown == "" {
		return &FieldError{Reason: `unknown field ""`}
	}
	// The name is the caller's: shortened (one real answer was 174,800 bytes long), escaped,
	// and with any phone number masked.
	return &FieldError{Field: ShowName(*s.unknown, maxShownName), Reason: "unknown field"}
}

func (s *refObjectScan) refFail(err *FieldError) {
	if s.err == nil {
		s.err = err
		s.errFirst = s.unknown == nil
	}
}

func refDecodeObject(data []byte, refMembers []refMember) (refObjectScan, error) {
	var scan refObjectScan
	if !json.Valid(data) {
		return scan, refMemberSyntaxError(data)
	}
	// From here on data is one valid JSON value, so the scanning below needs no error checks.
	i := refSkipSpace(data, 0)
	if data[i] != '{' {
		return scan, &FieldError{Reason: "expected a JSON object, got " + valueKind(data[i])}
	}
	var seen uint64
	for i = refSkipSpace(data, i+1); data[i] != '}'; {
		end := refSkipString(data, i)
		rawKey := data[i:end]
		i = refSkipSpace(data, refSkipSpace(data, end)+1) // past the colon
		vend := refSkipValue(data, i)
		value := data[i:vend]
		if i = refSkipSpace(data, vend); data[i] == ',' {
			i = refSkipSpace(data, i+1)
		}

		k := refLookupMember(refMembers, rawKey)
		if k < 0 {
			scan.refUnknownMember(rawKey, value)
			continue
		}
		name := refMembers[k].name
		if seen&(1<<k) != 0 {
			scan.refFail(fieldErr(name, "appears more than once"))
			continue
		}
		seen |= 1 << k
		switch dst := refMembers[k].dst.(type) {
		case *json.RawMessage:
			*dst = value
		case *string:
			switch value[0] {
			case '"':
				var why string
				if *dst, why = refJsonString(value); why != "" {
					scan.refFail(fieldErr(name, "%s", why))
				}
			case 'n': // null: same as absent
			default:
				scan.refFail(fieldErr(name, "must be a string, got %s", valueKind(value[0])))
			}
		}
	}
	return scan, nil
}

func (s *refObjectScan) refUnknownMember(rawKey, value []byte) {
	name, why := refJsonString(rawKey)
	if why != "" {
		s.refFail(&FieldError{Reason: "member name " + Excerpt(string(rawKey[1:len(rawKey)-1]), maxShownName) + " " + why})
		return
	}
	if !utf8.Valid(value) {
		s.refFail(&FieldError{Field: ShowName(name, maxShownName), Reason: "is not valid UTF-8"})
	}
	if s.unknown == nil {
		s.unknown = &name
	}
}

// refMemberSyntaxError is refSyntaxError naming the top-level member in whose value (after its
// name and colon) the text stops being JSON.
func refMemberSyntaxError(data []byte) error {
	err := refSyntaxError(data)
	fe, ok := err.(*FieldError)
	if !ok || fe.Field != "" || startsWithBOM(data) {
		return err
	}
	at := int64(-1)
	var se *json.SyntaxError
	if errors.As(json.NewDecoder(bytes.NewReader(data)).Decode(new(json.RawMessage)), &se) { // the end of the text is no SyntaxError here
		at = se.Offset
	}
	// Stated from encoding/json's tokens (failingMember, which arrays of events use too), where
	// decodeObject tells the member by its own scan.
	if name, ok := failingMember(data, at); ok {
		reason := fe.Reason
		if name == "phone" { // the phone's errors quote nothing of its text, nor its offset
			reason = "invalid JSON: its value stops being JSON (send the number as a JSON string)"
		}
		return &FieldError{Field: ShowName(name, maxShownName), Reason: reason}
	}
	return err
}

func refSyntaxError(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return jsonError(err)
	}
	switch v[0] {
	case '{':
		return &FieldError{Reason: "unexpected data after the JSON object"}
	case '[':
		return &FieldError{Reason: "unexpected data after the JSON array"}
	}
	return &FieldError{Reason: "expected a JSON object, got " + valueKind(v[0])}
}

func refLookupMember(refMembers []refMember, rawKey []byte) int {
	name := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		key, _ := refJsonString(rawKey)
		for k := range refMembers {
			if refMembers[k].name == key {
				return k
			}
		}
		return -1
	}
	for k := range refMembers {
		if refMembers[k].name == string(name) {
			return k
		}
	}
	return -1
}

func refJsonString(raw []byte) (s, why string) {
	inner := raw[1 : len(raw)-1]
	if !utf8.Valid(inner) { // escapes are ASCII: this checks the raw text
		return "", "is not valid UTF-8"
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), ""
	}
	return refUnescape(inner)
}

func refUnescape(in []byte) (string, string) {
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
			r := refHex4(in[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by an escaped low one.
				if r >= 0xDC00 || i+6 > len(in) || in[i] != '\\' || in[i+1] != 'u' {
					return "", refWhySurrogate
				}
				if r = utf16.DecodeRune(r, refHex4(in[i+2:])); r == utf8.RuneError {
					return "", refWhySurrogate
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

func refHex4(h []byte) rune {
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

func refSkipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func refSkipString(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

func refSkipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return refSkipString(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = refSkipString(data, i)
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
	for i < len(data) && !refEndsLiteral(data[i]) {
		i++
	}
	return i
}

func refEndsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func (w *refWireEvent) refValidate() (VerifyEvent, error) {
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
		// decision_id came after the decoder was frozen: taught here the way the other text
		// fields are checked, so the comparison covers it too.
		DecisionID: w.DecisionID,
	}
	var err error
	if err = refCheckText("event_id", w.EventID, true, MaxEventIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.TS, err = refParseTS(w.TS); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckText("app_id", w.AppID, true, MaxAppIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckEnum("flow", w.Flow, flows, true); err != nil {
		return VerifyEvent{}, err
	}
	if ev.Phone, err = NormalizePhone(w.Phone); err != nil {
		return VerifyEvent{}, err
	}
	if ev.IP, err = ParseIP(w.IP); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckEnum("carrier", w.Carrier, carriers, false); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckEnum("platform", w.Platform, platforms, false); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckText("device_id", w.DeviceID, false, MaxDeviceIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckEnum("outcome", w.Outcome, outcomes, true); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckText("error_code", w.ErrorCode, false, MaxErrorCodeLen); err != nil {
		return VerifyEvent{}, err
	}
	if ev.TokenDigest, err = NormalizeTokenDigest(w.TokenDigest); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckText("ex_id", w.ExID, false, MaxExIDLen); err != nil {
		return VerifyEvent{}, err
	}
	if err = refCheckText("decision_id", w.DecisionID, false, MaxDecisionIDLen); err != nil {
		return VerifyEvent{}, err
	}
	return ev, nil
}

func refParseTS(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, fieldErr("ts", "is required")
	}
	var t time.Time
	if raw[0] == '"' {
		s, why := refJsonString(raw) // raw is valid JSON: refDecodeStrict checked the whole object
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

func refCheckText(field, v string, required bool, maxLen int) error {
	if v == "" {
		if required {
			return fieldErr(field, "is required")
		}
		return nil
	}
	if len(v) > maxLen {
		return fieldErr(field, "is %d bytes long, the limit is %d", len(v), maxLen)
	}
	// v is valid UTF-8 (refJsonString refuses anything else), where every byte below 0x80 is an
	// ASCII character: one pass over the bytes finds control characters, and tells whether the
	// exact (slower) phone scan is needed.
	digits, mayBePhone := 0, false
	for i := 0; i < len(v); i++ {
		switch refTextClass[v[i]] {
		case refClassControl:
			return fieldErr(field, "contains a control character")
		case refClassDigit:
			digits++
			mayBePhone = mayBePhone || digits >= 11
		case refClassSep:
		case refClassWide:
			mayBePhone = true
		default:
			digits = 0
		}
	}
	if mayBePhone && refContainsPhone(v) {
		return fieldErr(field, "looks like it contains a mobile phone number; send an opaque id (riskflow never stores phone numbers in plaintext)")
	}
	if isBlank(v) { // added after the single-pass scanner: both decoders share the test
		return fieldErr(field, blankReason)
	}
	return nil
}

var refTextClass = func() [256]uint8 {
	t := refPhoneClass
	for c := range 0x20 {
		t[c] = refClassControl
	}
	t[0x7f] = refClassControl
	return t
}()

func refCheckEnum(field, v string, allowed []string, required bool) error {
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

type refWireCheck struct {
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

func (w *refWireCheck) refMembers() []refMember {
	return []refMember{
		{"phone", &w.Phone}, {"ip", &w.IP}, {"carrier", &w.Carrier}, {"app_id", &w.AppID},
		{"flow", &w.Flow}, {"platform", &w.Platform}, {"device_id", &w.DeviceID},
		{"token_digest", &w.TokenDigest}, {"ex_id", &w.ExID},
	}
}

func refDecodeCheckRequest(data []byte) (CheckRequest, error) {
	var w refWireCheck
	if len(bytes.TrimSpace(data)) == 0 {
		return CheckRequest{}, &FieldError{Reason: "body is empty: expected a JSON object"}
	}
	scan, err := refDecodeObject(data, w.refMembers())
	if err != nil {
		return CheckRequest{}, err
	}
	switch {
	case scan.err != nil && (scan.unknown == nil || scan.errFirst):
		return CheckRequest{}, scan.err
	case scan.unknown != nil:
		return CheckRequest{}, scan.refUnknownErr()
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
	if err = refCheckText("app_id", w.AppID, true, MaxAppIDLen); err != nil {
		return CheckRequest{}, err
	}
	if err = refCheckEnum("flow", w.Flow, append([]string{""}, flows...), false); err != nil {
		return CheckRequest{}, err
	}
	if err = refCheckEnum("carrier", w.Carrier, carriers, false); err != nil {
		return CheckRequest{}, err
	}
	if err = refCheckEnum("platform", w.Platform, platforms, false); err != nil {
		return CheckRequest{}, err
	}
	if err = refCheckText("device_id", w.DeviceID, false, MaxDeviceIDLen); err != nil {
		return CheckRequest{}, err
	}
	if r.TokenDigest, err = NormalizeTokenDigest(w.TokenDigest); err != nil {
		return CheckRequest{}, err
	}
	if err = refCheckText("ex_id", w.ExID, false, MaxExIDLen); err != nil {
		return CheckRequest{}, err
	}
	return r, nil
}

func refContainsPhone(s string) bool {
	if !refMayHoldPhone(s) {
		return false
	}
	return exactPhoneScan(s, written)
}

func refMayHoldPhone(s string) bool {
	n, most := 0, 0
	for i := 0; i < len(s); i++ {
		switch refPhoneClass[s[i]] {
		case refClassDigit:
			if n++; n >= 11 {
				return true
			}
			most = max(most, n)
		case refClassSep:
		case refClassWide: // may start a digit or separator outside ASCII, or an escape: leave it to the exact scan
			return true
		default:
			n = 0
		}
	}
	// A number in scientific notation shows fewer digits ("1.38123456e+10": sciPhoneAt).
	return most >= minSciDigits && strings.ContainsAny(s, "eE")
}

var refPhoneClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = refClassDigit
	}
	for _, c := range []byte{' ', '\t', '-', '.', '(', ')', '+', '/', '_', ':', ',', '\''} {
		t[c] = refClassSep
	}
	for c := 0xC0; c < 0x100; c++ {
		t[c] = refClassWide
	}
	t['%'], t['\\'], t['&'] = refClassWide, refClassWide, refClassWide // may start an escaped digit ('\\' separates too)
	return t
}()

const (
	refClassOther = iota
	refClassDigit
	refClassSep
	refClassWide
	refClassControl // used by refCheckText
)

const refWhySurrogate = "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): not valid Unicode"

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
