package schemas

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON form of r to b: byte for byte what encoding/json writes for the
// struct (same field order, escaping, number and time formats, map keys sorted), except that
// empty tags, detail and hits are always [] / {} / [], never null. The scorer writes every record
// this way: it costs a fraction of encoding/json's reflection and allocates nothing beyond b.
func (r *ScoreRecord) AppendJSON(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, r.EventID)
	b = append(b, `,"ts":`...)
	b = appendJSONTime(b, r.TS)
	b = append(b, `,"app_id":`...)
	b = appendJSONString(b, r.AppID)
	b = append(b, `,"flow":`...)
	b = appendJSONString(b, r.Flow)
	b = append(b, `,"phone_hash":`...)
	b = appendJSONString(b, r.PhoneHash)
	b = append(b, `,"phone_masked":`...)
	b = appendJSONString(b, r.PhoneMasked)
	b = append(b, `,"phone_segment":`...)
	b = appendJSONString(b, r.PhoneSegment)
	b = append(b, `,"ip":`...)
	b = appendJSONString(b, r.IP)
	b = appendOptString(b, `,"carrier":`, r.Carrier)
	b = appendOptString(b, `,"platform":`, r.Platform)
	b = appendOptString(b, `,"device_id":`, r.DeviceID)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, r.Outcome)
	b = appendOptString(b, `,"error_code":`, r.ErrorCode)
	b = appendOptString(b, `,"token_digest":`, r.TokenDigest)
	b = appendOptString(b, `,"ex_id":`, r.ExID)
	b = appendOptString(b, `,"decision_id":`, r.DecisionID)
	b = append(b, `,"geo":`...)
	b = r.Geo.appendJSON(b)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(r.Score), 10)
	b = appendTags(b, r.Tags)
	b = append(b, `,"detail":{`...)
	b = appendDetail(b, r.Detail)
	b = append(b, '}')
	b = appendHits(b, r.Hits)
	b = append(b, `,"rules_version":`...)
	b = appendJSONString(b, r.RulesVersion)
	b = append(b, `,"scored_at":`...)
	b = appendJSONTime(b, r.ScoredAt)
	return append(b, '}')
}

// MarshalJSON is AppendJSON. It fails, as encoding/json does for a time.Time, on a timestamp
// outside years 0–9999, or on a NaN or infinite coordinate.
func (r ScoreRecord) MarshalJSON() ([]byte, error) {
	if err := checkJSONTime("ts", r.TS); err != nil {
		return nil, err
	}
	if err := checkJSONTime("scored_at", r.ScoredAt); err != nil {
		return nil, err
	}
	for _, f := range []float64{r.Geo.Lat, r.Geo.Lon} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fieldErr("geo", "coordinate %v cannot be written as JSON", f)
		}
	}
	return r.AppendJSON(make([]byte, 0, 512)), nil
}

func checkJSONTime(field string, t time.Time) error {
	if y := t.Year(); y < 0 || y > 9999 {
		return fieldErr(field, "year %d outside the range JSON timestamps allow", y)
	}
	return nil
}

func (g *Geo) appendJSON(b []byte) []byte {
	b = append(b, '{')
	start := len(b)
	b = appendOptString(b, `,"country":`, g.Country)
	b = appendOptString(b, `,"province":`, g.Province)
	b = appendOptString(b, `,"city":`, g.City)
	if g.Lat != 0 {
		b = append(b, `,"lat":`...)
		b = appendJSONFloat(b, g.Lat)
	}
	if g.Lon != 0 {
		b = append(b, `,"lon":`...)
		b = appendJSONFloat(b, g.Lon)
	}
	if g.ASN != 0 {
		b = append(b, `,"asn":`...)
		b = strconv.AppendUint(b, uint64(g.ASN), 10)
	}
	b = appendOptString(b, `,"ip_type":`, g.IPType)
	if len(b) > start { // drop the first field's leading comma
		copy(b[start:], b[start+1:])
		b = b[:len(b)-1]
	}
	return append(b, '}')
}

// appendTags writes `,"tags":[…]` ([] when there are none).
func appendTags(b []byte, tags []string) []byte {
	b = append(b, `,"tags":[`...)
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, ']')
}

// appendDetail writes the map's entries sorted by key, as encoding/json does.
func appendDetail(b []byte, d map[string]TagDetail) []byte {
	var stack [16]string
	keys := stack[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		v := d[k]
		b = appendJSONString(b, k)
		b = append(b, `:{"score":`...)
		b = strconv.AppendInt(b, int64(v.Score), 10)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, v.Reason)
		b = append(b, '}')
	}
	return b
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return appendJSONString(b, s)
}

func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONFloat formats a float64 as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with its default HTML escaping: <, > and & as
// \u003c \u003e \u0026, control characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendHits appends `,"hits":[...]`: every rule hit as encoding/json writes a RuleHit.
func appendHits(b []byte, hits []RuleHit) []byte {
	b = append(b, `,"hits":[`...)
	for i := range hits {
		if i > 0 {
			b = append(b, ',')
		}
		h := &hits[i]
		b = append(b, `{"rule":`...)
		b = appendJSONString(b, h.Rule)
		b = append(b, `,"tag":`...)
		b = appendJSONString(b, h.Tag)
		b = append(b, `,"score":`...)
		b = strconv.AppendInt(b, int64(h.Score), 10)
		b = append(b, `,"mode":`...)
		b = appendJSONString(b, h.Mode)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, h.Reason)
		b = append(b, '}')
	}
	return append(b, ']')
}
