package pipeline

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/riskflow/riskflow/schemas"
)

// decodeScoreRecordInto decodes a risk.scores message into the zero record *r as
// schemas.DecodeScoreRecord does — the same record (an empty detail, tags or hits may come back nil
// instead of empty: they read the same), the same errors, *r zeroed on error — at a fraction of
// its cost on the records scorers write. encoding/json's reflection took 9–13 µs per record, more
// than everything else the archiver does with it; this scanner reads the fields the record has by
// name in one pass, in place (a batch's records are not copied around).
//
// It only accepts what it can read exactly as encoding/json would: the record's own field names
// (any order), each at most once, strings without invalid UTF-8 or surrogate escapes, numbers of
// the field's kind. Anything else — unknown or differently cased names, null, duplicates,
// malformed JSON, a record that fails validation — goes to schemas.DecodeScoreRecord, which
// decides, so unusual input costs the old price and gets the old answer (FuzzDecodeScoreRecord
// holds the two equal).
//
// With shared, the record's strings point into data instead of a copy of it (no allocation, no
// copy: a third less memory per record in flight); data must then stay unchanged for as long as
// the record is used. The archiver's batches qualify: kafka-go allocates every message's value,
// and nothing writes to it.
func decodeScoreRecordInto(data []byte, r *schemas.ScoreRecord, shared bool) error {
	text := ""
	if shared {
		text = unsafe.String(unsafe.SliceData(data), len(data))
	} else {
		text = string(data)
	}
	if fastScoreRecord(data, text, r) {
		return nil
	}
	*r = schemas.ScoreRecord{} // what the fast path left
	var err error
	*r, err = schemas.DecodeScoreRecord(data) // copies what it keeps
	return err
}

// fastScoreRecord decodes data (text is the same bytes as a string) into the zero record *r and
// reports whether it could; when it could not, *r holds a partial record.
func fastScoreRecord(data []byte, text string, r *schemas.ScoreRecord) bool {
	d := recScanner{b: data, s: text}
	d.space()
	if !d.record(r) {
		return false
	}
	d.space()
	return d.i == len(d.s) && r.EventID != "" && !r.TS.IsZero() && len(r.PhoneHash) == 64 && schemas.ValidScore(r.Score)
}

// recScanner reads one JSON text. s is b as a string: field values are substrings of it.
type recScanner struct {
	b []byte
	s string
	i int
}

func (d *recScanner) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *recScanner) eat(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads {"key": value, …}, calling member for each key with the scanner on its value;
// member returns false to give up.
func (d *recScanner) object(member func(key string) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		d.space()
		key, ok := d.str()
		if !ok || !d.eat(':') {
			return false
		}
		d.space()
		if !member(key) {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat('}')
	}
}

// array reads [v, …], calling elem for each element with the scanner on it.
func (d *recScanner) array(elem func() bool) bool {
	if !d.eat('[') {
		return false
	}
	if d.eat(']') {
		return true
	}
	for {
		d.space()
		if !elem() {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat(']')
	}
}

// seen marks field bit in *mask, failing on a duplicate (encoding/json would merge or overwrite).
func seen(mask *uint32, bit uint) bool {
	if *mask&(1<<bit) != 0 {
		return false
	}
	*mask |= 1 << bit
	return true
}

func (d *recScanner) record(r *schemas.ScoreRecord) bool {
	var mask uint32
	return d.object(func(key string) bool {
		var bit uint
		var ok bool
		switch key {
		case "event_id":
			bit, ok = 0, d.strTo(&r.EventID)
		case "ts":
			bit, ok = 1, d.time(&r.TS)
		case "app_id":
			bit, ok = 2, d.strTo(&r.AppID)
		case "flow":
			bit, ok = 3, d.strTo(&r.Flow)
		case "phone_hash":
			bit, ok = 4, d.strTo(&r.PhoneHash)
		case "phone_masked":
			bit, ok = 5, d.strTo(&r.PhoneMasked)
		case "phone_segment":
			bit, ok = 6, d.strTo(&r.PhoneSegment)
		case "ip":
			bit, ok = 7, d.strTo(&r.IP)
		case "carrier":
			bit, ok = 8, d.strTo(&r.Carrier)
		case "platform":
			bit, ok = 9, d.strTo(&r.Platform)
		case "device_id":
			bit, ok = 10, d.strTo(&r.DeviceID)
		case "outcome":
			bit, ok = 11, d.strTo(&r.Outcome)
		case "error_code":
			bit, ok = 12, d.strTo(&r.ErrorCode)
		case "token_digest":
			bit, ok = 13, d.strTo(&r.TokenDigest)
		case "ex_id":
			bit, ok = 14, d.strTo(&r.ExID)
		case "geo":
			bit, ok = 15, d.geo(&r.Geo)
		case "score":
			bit, ok = 16, d.int(&r.Score)
		case "tags":
			bit = 17
			r.Tags = []string{}
			ok = d.array(func() bool {
				s, ok := d.str()
				r.Tags = append(r.Tags, s)
				return ok
			})
		case "detail":
			bit, ok = 18, d.detail(r)
		case "hits":
			bit = 19
			r.Hits = []schemas.RuleHit{}
			ok = d.array(func() bool {
				var h schemas.RuleHit
				ok := d.hit(&h)
				r.Hits = append(r.Hits, h)
				return ok
			})
		case "rules_version":
			bit, ok = 20, d.strTo(&r.RulesVersion)
		case "scored_at":
			bit, ok = 21, d.time(&r.ScoredAt)
		case "decision_id":
			bit, ok = 22, d.strTo(&r.DecisionID)
		default:
			return false
		}
		return ok && seen(&mask, bit)
	})
}

func (d *recScanner) geo(g *schemas.Geo) bool {
	var mask uint32
	return d.object(func(key string) bool {
		var bit uint
		var ok bool
		switch key {
		case "country":
			bit, ok = 0, d.strTo(&g.Country)
		case "province":
			bit, ok = 1, d.strTo(&g.Province)
		case "city":
			bit, ok = 2, d.strTo(&g.City)
		case "lat":
			bit, ok = 3, d.float(&g.Lat)
		case "lon":
			bit, ok = 4, d.float(&g.Lon)
		case "asn":
			bit, ok = 5, d.uint32(&g.ASN)
		case "ip_type":
			bit, ok = 6, d.strTo(&g.IPType)
		default:
			return false
		}
		return ok && seen(&mask, bit)
	})
}

func (d *recScanner) hit(h *schemas.RuleHit) bool {
	var mask uint32
	return d.object(func(key string) bool {
		var bit uint
		var ok bool
		switch key {
		case "rule":
			bit, ok = 0, d.strTo(&h.Rule)
		case "tag":
			bit, ok = 1, d.strTo(&h.Tag)
		case "score":
			bit, ok = 2, d.int(&h.Score)
		case "mode":
			bit, ok = 3, d.strTo(&h.Mode)
		case "reason":
			bit, ok = 4, d.strTo(&h.Reason)
		default:
			return false
		}
		return ok && seen(&mask, bit)
	})
}

func (d *recScanner) detail(r *schemas.ScoreRecord) bool {
	r.Detail = nil // "{}", most records' detail, allocates nothing (nil and empty read the same)
	return d.object(func(tag string) bool {
		if _, dup := r.Detail[tag]; dup {
			return false
		}
		if r.Detail == nil {
			r.Detail = make(map[string]schemas.TagDetail, 2)
		}
		var td schemas.TagDetail
		var mask uint32
		ok := d.object(func(key string) bool {
			var bit uint
			var ok bool
			switch key {
			case "score":
				bit, ok = 0, d.int(&td.Score)
			case "reason":
				bit, ok = 1, d.strTo(&td.Reason)
			default:
				return false
			}
			return ok && seen(&mask, bit)
		})
		r.Detail[tag] = td
		return ok
	})
}

func (d *recScanner) strTo(dst *string) bool {
	s, ok := d.str()
	*dst = s
	return ok
}

// str reads a JSON string at d.i. Without escapes it is a substring of d.s; with them, a new
// string. It fails on what encoding/json would not return as written: control characters (an
// error there), invalid UTF-8 and surrogate escapes (replaced by U+FFFD there).
func (d *recScanner) str() (string, bool) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	// One pass to the closing quote over the plain bytes, eight at a time; anything else ends it.
	j := start
	for j+8 <= len(d.b) && !special8(binary.LittleEndian.Uint64(d.b[j:])) {
		j += 8
	}
	for j < len(d.b) && plainByte[d.b[j]] {
		j++
	}
	if j < len(d.b) && d.b[j] == '"' {
		d.i = j + 1
		return d.s[start:j], true
	}
	return d.strSlow(start)
}

// special8 reports whether any of the eight bytes in w is not plain (see plainByte): a quote, a
// backslash, a control character or a byte ≥ 0x80. (v - 0x01…) &^ v & 0x80… is non-zero exactly
// when v has a zero byte; (v - n·0x01…) &^ v & 0x80… when it has a byte below n (n ≤ 0x80).
func special8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(w-ones*0x20)&^w|w)&highs != 0
}

// plainByte is the printable ASCII a string holds as is (not '"' or '\\').
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// strSlow reads the string starting at start (after its quote) that holds an escape, a byte
// ≥ 0x80 or a control character.
func (d *recScanner) strSlow(start int) (string, bool) {
	q := strings.IndexByte(d.s[start:], '"')
	if q < 0 {
		return "", false
	}
	v := d.s[start : start+q]
	if strings.IndexByte(v, '\\') >= 0 {
		return d.escaped(start)
	}
	ctl, high := scanBytes(d.b[start : start+q])
	if ctl || high && !utf8.ValidString(v) {
		return "", false
	}
	d.i = start + q + 1
	return v, true
}

// scanBytes reports whether b holds a control character (< 0x20) and whether it holds a byte
// ≥ 0x80, eight bytes at a time.
func scanBytes(b []byte) (ctl, high bool) {
	const highs, lim = 0x8080808080808080, 0x2020202020202020
	var acc, ctlAcc uint64
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		acc |= w
		ctlAcc |= (w - lim) &^ w // a byte < 0x20 (without the high bit) sets its high bit here
		b = b[8:]
	}
	for _, c := range b {
		acc |= uint64(c)
		if c < 0x20 {
			ctl = true
		}
	}
	return ctl || ctlAcc&highs != 0, acc&highs != 0
}

// escaped reads the string starting at start (after its quote) that holds an escape.
func (d *recScanner) escaped(start int) (string, bool) {
	buf := make([]byte, 0, 64)
	for j := start; j < len(d.s); {
		c := d.s[j]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return "", false
			}
			d.i = j + 1
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(d.s) {
			return "", false
		}
		switch e := d.s[j+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if j+6 > len(d.s) {
				return "", false
			}
			n, err := strconv.ParseUint(d.s[j+2:j+6], 16, 32)
			if err != nil || utf16.IsSurrogate(rune(n)) {
				return "", false
			}
			buf = utf8.AppendRune(buf, rune(n))
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// time reads a JSON string as time.Time.UnmarshalJSON does (RFC 3339), from the raw bytes.
func (d *recScanner) time(t *time.Time) bool {
	start := d.i
	if _, ok := d.str(); !ok {
		return false
	}
	return t.UnmarshalJSON(d.b[start:d.i]) == nil
}

// number returns the JSON number at d.i and whether it is an integer (no fraction or exponent).
func (d *recScanner) number() (tok string, integer, ok bool) {
	s, j := d.s, d.i
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && s[j] >= '1' && s[j] <= '9':
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	default:
		return "", false, false
	}
	integer = true
	if j < len(s) && s[j] == '.' {
		integer = false
		j++
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == k {
			return "", false, false
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		integer = false
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == k {
			return "", false, false
		}
	}
	tok, d.i = s[d.i:j], j
	return tok, integer, true
}

// int reads an integer that fits an int (encoding/json refuses fractions and exponents there).
func (d *recScanner) int(dst *int) bool {
	tok, integer, ok := d.number()
	if !ok || !integer || len(tok) > 18 {
		return false
	}
	n, err := strconv.Atoi(tok)
	*dst = n
	return err == nil
}

func (d *recScanner) uint32(dst *uint32) bool {
	tok, integer, ok := d.number()
	if !ok || !integer || tok[0] == '-' || len(tok) > 10 {
		return false
	}
	n, err := strconv.ParseUint(tok, 10, 64)
	if err != nil || n > math.MaxUint32 {
		return false
	}
	*dst = uint32(n)
	return true
}

func (d *recScanner) float(dst *float64) bool {
	tok, _, ok := d.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(tok, 64)
	*dst = f
	return err == nil
}
