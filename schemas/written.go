package schemas

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// ReadWrittenPhone reads a mainland mobile number as a person writes or pastes it — a +86, 0086
// or 86 prefix, "tel:", separators anywhere (the phone-like detector's: spaces of any width,
// dashes, dots, brackets, slashes, underscores, invisible characters), digits of any script
// (full-width １３８) — and returns NormalizePhone's digits. It is lenient where the wire is
// strict: for people's tools (riskflow lookup), never for events or checks. Its errors are
// *FieldError of field phone and never show the number.
func ReadWrittenPhone(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 4 && strings.EqualFold(t[:4], "tel:") {
		t = strings.TrimSpace(t[4:])
	}
	var d []byte
	plus := false
	for i := 0; i < len(t); {
		r, w := utf8.DecodeRuneInString(t[i:])
		switch v, digit := unicodeDigit(r); {
		case digit:
			d = append(d, '0'+v)
		case r == '+' || r == '＋':
			if len(d) > 0 || plus {
				return "", fieldErr("phone", "is not a mainland mobile number: a '+' inside the number")
			}
			plus = true
		case r == '\t' || sepAt(t, i) == w:
		default:
			what := "a character"
			if unicode.IsLetter(r) {
				what = "a letter"
			}
			return "", fieldErr("phone", "is not a mainland mobile number: %s where digits and separators were expected (a +86 or 0086 prefix, spaces and - . ( ) / _ are read)", what)
		}
		i += w
	}
	num := string(d)
	switch {
	case plus && !strings.HasPrefix(num, "86"):
		return "", fieldErr("phone", "is not a mainland mobile number: only +86 numbers are scored")
	case plus:
		num = "+" + num
	case strings.HasPrefix(num, "0086"):
		num = "+" + num[2:]
	case len(num) == 15 && strings.HasPrefix(num, "8614"):
		// 86 before a 13-digit IoT number (14x): NormalizePhone strips a bare 86 only from 13 digits.
		num = "+" + num
	}
	return NormalizePhone(num)
}
