package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
)

// template is a reason compiled into literal text and variable references. A reason with no
// placeholder is kept as one string, so a match costs nothing to explain.
type template struct {
	static string    // the whole text when segs is empty
	segs   []segment // text and placeholders in order
}

type segment struct {
	lit string // literal text, when name == ""
	// name is a declared variable whose value is substituted.
	name string
	// plural is set for `{name|one|other}`: one is shown when the value is 1, other otherwise,
	// each with # replaced by the value.
	plural     bool
	one, other string
}

// templateError is a problem in a reason, at a byte offset of the reason text.
type templateError struct {
	offset int
	msg    string
}

// parseTemplate compiles a reason. `{name}` substitutes a declared variable; `{name|one|other}`
// (an int variable) shows one when the value is 1 and other otherwise, each with `#` replaced by
// the value ("{token_seen|once|# times}", "{app_blocks_1h|# block|# blocks}"); `{{` and `}}` stand
// for literal braces. Every problem is reported, not just the first.
func parseTemplate(s string, env *Env) (template, []templateError) {
	var (
		t    template
		errs []templateError
		lit  strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i += 2
		case c == '}':
			errs = append(errs, templateError{i, "unbalanced '}' (write '}}' for a literal brace)"})
			i++
		case c == '{':
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] == '{' {
				errs = append(errs, templateError{i, "unclosed '{' (write '{{' for a literal brace)"})
				i++
				continue
			}
			inner := s[i+1 : i+1+end]
			name, forms, plural := strings.Cut(inner, "|")
			name = strings.TrimSpace(name)
			one, other, twoForms := strings.Cut(forms, "|")
			typ, ok := env.byName[name]
			switch {
			case name == "":
				errs = append(errs, templateError{i, "empty placeholder {}"})
			case !ok:
				errs = append(errs, templateError{i, fmt.Sprintf("placeholder {%s} is not a declared variable", name)})
			case plural && (!twoForms || strings.Contains(other, "|")):
				errs = append(errs, templateError{i, fmt.Sprintf("placeholder {%s} must give two forms: {%s|one|other}", inner, name)})
			case plural && typ != Int:
				errs = append(errs, templateError{i, fmt.Sprintf("placeholder {%s}: singular and plural forms need an int variable, %s is %s", inner, name, typ)})
			default:
				flush()
				t.segs = append(t.segs, segment{name: name, plural: plural, one: one, other: other})
			}
			i += end + 2
		default:
			lit.WriteByte(c)
			i++
		}
	}
	if len(errs) > 0 {
		return template{}, errs
	}
	flush()
	switch {
	case len(t.segs) == 0:
		t.segs = nil
	case len(t.segs) == 1 && t.segs[0].name == "":
		t.static, t.segs = t.segs[0].lit, nil
	}
	return t, nil
}

// MaxReasonBytes bounds a hit's reason: a longer one (a long description used as the reason, a
// string variable far longer than usual) is cut at a character boundary and ends with "…". Every
// verdict carries its hits' reasons to the caller, risk.scores, risk.decisions and ClickHouse.
const MaxReasonBytes = 512

// Longest rendering of a value of each type, for maxJSONLen.
const (
	maxIntText    = len("-9223372036854775808")
	maxDoubleText = len("-1.7976931348623157e+308")
	maxBoolText   = len("false")
)

// maxJSONLen is the most bytes a reason rendered from t takes as a JSON string's contents (as
// encoding/json writes it: <, > and & as \u003c, quotes and backslashes escaped): its literal
// text exactly and, for each placeholder, the longest value of its type, a string counting
// MaxStringSize bytes as cost estimates assume (a longer one is clipped with the reason, at
// MaxReasonBytes).
func (t *template) maxJSONLen(env *Env) int {
	n := jsonLen(t.static)
	for _, sg := range t.segs {
		switch {
		case sg.name == "":
			n += jsonLen(sg.lit)
		case sg.plural:
			n += max(jsonLen(sg.one)+strings.Count(sg.one, "#")*maxIntText, jsonLen(sg.other)+strings.Count(sg.other, "#")*maxIntText)
		default:
			switch env.byName[sg.name] {
			case Int:
				n += maxIntText
			case Double:
				n += maxDoubleText
			case Bool:
				n += maxBoolText
			default:
				n += MaxStringSize
			}
		}
	}
	return min(n, (MaxReasonBytes+len("…"))*len(`\u003c`))
}

// jsonLen is the length of s as a JSON string's contents, as encoding/json escapes it.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029' || r == utf8.RuneError && size == 1:
			n += 6 // \u003c; an invalid byte becomes \ufffd
		default:
			n += size
		}
		i += size
	}
	return n
}

// render writes the reason for in into buf (reused) and returns it as a new string, clipped to
// MaxReasonBytes. It stops once the text passes MaxReasonBytes — the clip reads no further — so a
// reason of thousands of placeholders, or a plural form of thousands of #, costs a check what the
// 512 bytes shown cost, not what the whole text would (it was rendered whole on every match).
func (t *template) render(in Input, buf *[]byte) string {
	if t.segs == nil {
		return t.static // clipped when compiled
	}
	b := (*buf)[:0]
	for i := range t.segs {
		if len(b) > MaxReasonBytes {
			break
		}
		sg := &t.segs[i]
		if sg.name == "" {
			b = append(b, sg.lit[:min(len(sg.lit), MaxReasonBytes+1-len(b))]...)
			continue
		}
		v, ok := in.ResolveName(sg.name)
		if !ok {
			b = append(b, '?')
			continue
		}
		if sg.plural {
			b = appendPlural(b, sg, v)
			continue
		}
		b = appendValue(b, v)
	}
	*buf = b
	if len(b) > MaxReasonBytes {
		return clip(string(b), MaxReasonBytes)
	}
	return string(b)
}

// appendPlural writes sg's singular form when v is 1 and its plural otherwise, # replaced by v.
func appendPlural(b []byte, sg *segment, v any) []byte {
	var arr [24]byte
	num := appendValue(arr[:0], v)
	form := sg.other
	if string(num) == "1" {
		form = sg.one
	}
	// Every byte of the form writes at least one: what lies past what render shows is not read.
	form = form[:min(len(form), max(MaxReasonBytes+1-len(b), 0))]
	for {
		before, after, found := strings.Cut(form, "#")
		b = append(b, before...)
		if !found {
			return b
		}
		b = append(b, num...)
		form = after
	}
}

// appendValue formats a variable's value: integers in decimal, doubles with at most two
// decimals (trailing zeros dropped), bools as true/false, strings as they are.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint:
		return strconv.AppendUint(b, uint64(x), 10)
	case float64:
		return appendDouble(b, x)
	case float32:
		return appendDouble(b, float64(x))
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		return append(b, x...)
	case types.Int:
		return strconv.AppendInt(b, int64(x), 10)
	case types.Uint:
		return strconv.AppendUint(b, uint64(x), 10)
	case types.Double:
		return appendDouble(b, float64(x))
	case types.Bool:
		return strconv.AppendBool(b, bool(x))
	case types.String:
		return append(b, x...)
	case fmt.Stringer:
		return append(b, x.String()...)
	}
	return fmt.Appendf(b, "%v", v)
}

func appendDouble(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1e15 {
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', 2, 64)
	// Drop trailing zeros and a trailing point: 3.50 → 3.5, 3.00 → 3.
	end := len(b)
	for end > start && b[end-1] == '0' {
		end--
	}
	if end > start && b[end-1] == '.' {
		end--
	}
	b = b[:end]
	if string(b[start:]) == "-0" {
		b = append(b[:start], '0')
	}
	return b
}
