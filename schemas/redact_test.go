package schemas

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// phoneFormats are ways callers write the number 138 1234 5678 (and its IoT cousin): each must be
// found by ContainsPhone and never survive Excerpt.
var phoneFormats = []string{
	"13812345678",
	"+8613812345678",
	"8613812345678",
	"008613812345678",
	"+86 138 1234 5678",
	"+86 13812345678",
	"+86-138-1234-5678",
	"86-138-1234-5678",
	"0086 138 1234 5678",
	"tel:13812345678",
	"tel:+86-13812345678",
	"(138)12345678",
	"(138) 1234-5678",
	"+86 (138) 1234 5678",
	"138 1234 5678",
	"138-1234-5678",
	"138.1234.5678",
	"1 3 8 1 2 3 4 5 6 7 8",
	"138 - 1234 - 5678",
	"１３８１２３４５６７８",       // full-width digits
	"+86 １３８ １２３４ ５６７８", // full-width digits with separators
	"１３８　１２３４　５６７８",     // full-width, with ideographic spaces (full-width input mode)
	"＋８６－１３８－１２３４－５６７８", // full-width plus and hyphens
	"138/1234/5678",
	"138_1234_5678",
	"138:1234:5678",
	"138\\1234\\5678",
	"+86+138+1234+5678",       // form-encoded spaces
	"138\u00a01234\u00a05678", // no-break spaces
	"138\u20131234\u20135678", // en dashes
	"138\u200b1234\u200b5678", // zero-width spaces: looks like 13812345678
	"138\u00ad1234\u00ad5678", // soft hyphens: invisible, looks like 13812345678
	"138\u202f1234\u202f5678", // narrow no-break spaces
	"138\u205f1234\u205f5678", // medium mathematical spaces
	"138\u202e1234\u202c5678", // bidirectional overrides: invisible
	"138\u20631234\u20635678", // invisible separators
	"138\u061c1234\u061c5678", // Arabic letter marks: invisible
	"138\ufe0f1234\ufe0f5678", // variation selectors: invisible
	"138\u034f1234\u034f5678", // combining grapheme joiners: invisible
	"138\ufe631234\ufe635678", // small hyphen-minus
	"138\ufe581234\ufe585678", // small em dashes
	"138\u301c1234\u301c5678", // wave dashes
	"𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖",             // mathematical digits
	"١٣٨١٢٣٤٥٦٧٨",             // Arabic-Indic digits
	"१३८१२३४५६७८",             // Devanagari digits
	"一三八一二三四五六七八",             // Chinese numerals: how a number is written past a digit filter
	"幺三八 一二三四 五六七八",           // 幺 (yāo) is how 1 is read out in phone numbers
	"壹叁捌壹贰叁肆伍陆柒捌",             // financial numerals
	"一三八〇〇一三八〇〇〇",             // 〇 for zero
	"+86 一三八 一二三四 五六七八",
	"%2B8613812345678", // percent-escaped
	"%2B86%20138%201234%205678",
	"%31%33%38%31%32%33%34%35%36%37%38",
	"%252B8613812345678", // escaped twice
	"1401234567890",      // 13-digit IoT number
	// Runs of separators of any length: a reader still sees one number.
	"138----1234----5678",
	"138    1234    5678",
	"138 -- 1234 -- 5678",
	"138 - / 1234 _ . 5678",
	"138\u2060\u2060\u2060\u20601234\u20605678", // four word joiners
	// What a Chinese input method types for '.', and middle dots.
	"138。1234。5678",
	"138·1234·5678",
	"138・1234・5678",
	"138‧1234‧5678",
	"138•1234•5678", // bullets
	// Digits with combining marks (underlined, accented, keycaps) and digits Unicode files as
	// other numbers: circled, parenthesized, superscript, subscript, dingbat.
	"1\u03013812345678",
	"1̲3̲8̲1̲2̲3̲4̲5̲6̲7̲8̲",
	"1️⃣3️⃣8️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣",
	"①③⑧①②③④⑤⑥⑦⑧",
	"⑴⑶⑻⑴⑵⑶⑷⑸⑹⑺⑻",
	"¹³⁸¹²³⁴⁵⁶⁷⁸",
	"₁₃₈₁₂₃₄₅₆₇₈",
	"❶❸❽❶❷❸❹❺❻❼❽",
	"㊀㊂㊇㊀㊁㊂㊃㊄㊅㊆㊇",
	"幺三八幺两三四五六拐八", // how numbers are read out on a radio: 幺 1, 两 2, 拐 7, 勾 9, 洞 0
	"幺三八幺两三四洞洞勾洞",
	// Escapes that every tool decodes: JSON and JavaScript, HTML character references.
	"\\u0031\\u0033\\u0038\\u0031\\u0032\\u0033\\u0034\\u0035\\u0036\\u0037\\u0038",
	"\\u00313812345678",
	"1\\x33812345678",
	"&#49;&#51;&#56;&#49;&#50;&#51;&#52;&#53;&#54;&#55;&#56;",
	"&#x31;3812345678",
	"%5Cu00313812345678",
	"\\061\\063\\070\\061\\062\\063\\064\\065\\066\\067\\070", // octal escapes (C, Python, CEL string literals)
	"\\0613812345678",
	"\\uD835\\uDFCF3812345678", // 𝟏 as a surrogate pair
	"013812345678",             // the trunk prefix 0, dialled before a mobile number from a landline
	"+861401234567890",
	"86 1401234567890",
	// A tab between groups, as a number copied from a table's cells reads, and C's escape of one
	// (ex_id "139\\t5724\\t0006" was accepted and stored as sent in verify_events, and a carrier
	// of 139<TAB>5724<TAB>0006 was echoed in its 400 as "139\t5724\t0006").
	"138\t1234\t5678",
	"138\\t1234\\t5678",
	"138 \t 1234\t5678",
	// The other escapes of a character: \U and its 8 hex digits (CEL, Python, C), \u{…} (JavaScript,
	// Rust, Swift), and JavaScript's escape() of a full-width digit, %uFF11.
	"\\U000000313812345678", "\\U00000031\\U00000033\\U0000003812345678",
	"\\u{31}\\u{33}\\u{38}12345678",
	"%uFF11%uFF13%uFF18%uFF11%uFF12%uFF13%uFF14%uFF15%uFF16%uFF17%uFF18",
}

// phoneContexts put a number where callers put it: alone, after a label, inside an id.
var phoneContexts = []string{
	"%s",
	"user %s",
	"phone=%s;",
	"order-%s-2",
	"%s-1710400000000",
	"1710400000000-%s",
	"手机%s号",
	"\"%s\"",
	"id_%s",
	"a\n%s\nb",
	"tel%s",  // a label glued to the number
	"user%s", // idem
}

func TestContainsPhoneFindsEveryFormat(t *testing.T) {
	for _, p := range phoneFormats {
		for _, ctx := range phoneContexts {
			s := strings.Replace(ctx, "%s", p, 1)
			if !ContainsPhone(s) {
				t.Errorf("ContainsPhone(%q) = false", s)
			}
		}
	}
}

func TestContainsPhoneIgnoresIdentifiers(t *testing.T) {
	for _, s := range []string{
		"",
		"1381234567",                           // 10 digits
		"138123456789",                         // 12 digits
		"23812345678",                          // does not start with 1
		"861234567890123",                      // 15-digit IMEI starting with 86
		"861401234567890",                      // IMEI whose tail looks like an IoT number
		"8614012345678901",                     // IMEI-like 16 digits
		"1381234567890123",                     // 16 digits
		"a13812345678",                         // glued to a letter: part of an identifier
		"13812345678b",                         // idem
		"3a8f13812345678b",                     // hex device id
		"a3f9e2c1d4b5a6f7e8d9c0b1a2f3e4d5",     // hex device id
		"13812345-6789-4abc-8def-0123456789ab", // UUID starting with digits
		"13812345-1381-2345-1381-138123456789", // UUID of digits: groups never add up to 11
		"9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
		"order-20250314-000123",
		"2025-03-14T09:26:53.589+08:00",
		"1741944413589",    // unix ms
		"1741944413",       // unix s
		"103911", "-40101", // error codes
		"192.168.100.123",                      // 12 digits
		"1.2.3.4.5.6.7.8.9.0",                  // 10 digits
		"1381234567⑩",                          // ⑩ is a number, not a digit
		"138a1234b5678",                        // letters split a number
		"0138123456789",                        // 13 digits after the trunk 0
		"01503091-8591-407E-B5E0-785902F1F9DB", // an iOS device id: 8 + 4 digits read as 0 + 11 (loadgen made one)
		"01381234-5678-4abc-8def-0123456789ab", // the trunk 0 only before a number written whole
		"7E21487C-74E1-401F-BDEB-014109473581", // a UUID's last group of 0 + 11 digits: 1 random UUID in 31,000
		"7e21487c-74e1-401f-bdeb-013812345678", "dev:7E21487C-74E1-401F-BDEB-019912345678",
		"010000000001", // no mobile number starts 10
		// Delimiters of tokens split numbers: lists, quoted values after a line number, columns.
		"[1, 5, 10, 20, 50, 100]", "[1,5,10,20,50,100]", "1;5;10;20;50;100", `line 138: "12345678"`,
		"138\n1234\n5678", "138\\n1234\\n5678", "138|1234|5678", "138=1234=5678", "1、5、10、20、50、100",
		"1，5，10，20，50，100", "＜138＞＜12345678＞", "138…1234…5678", "138\"1234\"5678",
		"MTM4MTIzNDU2Nzg=", // base64 and hex are encodings, not writings: see redact.go
		"3133383132333435363738",
		"%41%4213812345678", // glued to letters once decoded ("AB13812345678")
		"١٣٨١٢٣٤٥٦٧٨٩",      // 12 digits of another script
		"a١٣٨١٢٣٤٥٦٧٨",      // glued to a letter
		"lg-3k9x2a-123456",
		"evt_1733390000_5",   // unix second and a sequence number: groups of 10 and 1
		"1733390000-5",       // idem
		"evt_173339000_15",   // 9 and 2
		"req-1733390000.7-x", // idem, inside an id
		"192.168.100.10",     // an IPv4 address of 11 digits
		"139.123.145.78",     // idem, starting 139
		"127.0.0.1:19092",    // an address and port: the default broker's
		"dial tcp 127.0.0.1:19000: connect: connection refused",
		"tcp 127.0.0.1:49194->127.0.0.1:18123",
	} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true", s)
		}
	}
}

// Only a whole UUID's last group passes: the same twelve digits after something else, or with
// more of the token around them, read as the trunk 0 and a number. Errors and logs mask it all
// the same.
func TestUUIDTailIsNoTrunkPrefixedNumber(t *testing.T) {
	for _, s := range []string{
		"BDEB-013812345678",                                 // no UUID before
		"7E21487C-74E1-401F-BDEG-013812345678",              // G is no hex digit
		"7E21487C-74E1-401F-BDE-013812345678",               // a group of 3
		"x7E21487C-74E1-401F-BDEB-013812345678",             // glued before: no UUID
		"7E21487C-74E1-401F-BDEB-013812345678 013812345678", // the number after it still counts
	} {
		if !ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = false", s)
		}
	}
	if m := MaskPhones("device 7E21487C-74E1-401F-BDEB-014109473581 refused"); m != "device 7E21487C-74E1-401F-BDEB-<phone> refused" {
		t.Errorf("MaskPhones = %q: logs no longer mask a UUID's tail that reads as a number", m)
	}
}

// A number glued to a hexadecimal letter before it, or to any letter after it, is part of an id
// and accepted ("3a8f13812345678b", a hex device id), but what errors and logs show masks it all
// the same: a caller's "x13812345678" member name or "d13812345678" device id is not echoed.
func TestGluedNumbersAcceptedButMasked(t *testing.T) {
	for _, c := range []struct{ in, masked string }{
		{"a13812345678", "a<phone>"},
		{"13812345678b", "<phone>b"},
		{"3a8f13812345678b", "3a8f<phone>b"},
		{"x13812345678: unknown field", "x<phone>: unknown field"},
		{"no route POST /v1/risk/check13812345678", "no route POST /v1/risk/check<phone>"},
		{"device d13812345678", "device d<phone>"},
		{"AB+8613812345678cd", "AB<phone>cd"},
	} {
		if got := MaskPhones(c.in); got != c.masked {
			t.Errorf("MaskPhones(%q) = %q, want %q", c.in, got, c.masked)
		}
		if got := Excerpt(c.in, 64); strings.Contains(got, "12345678") {
			t.Errorf("Excerpt(%q) = %s shows the number", c.in, got)
		}
		if got := ShowName(c.in, 64); strings.Contains(got, "12345678") {
			t.Errorf("ShowName(%q) = %s shows the number", c.in, got)
		}
	}
	for _, s := range []string{"a13812345678", "13812345678b", "3a8f13812345678b", "d13812345678", "AB13812345678", "13812345678abc", "13812345678E", "13812345678deadbeef-1"} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true: an id of this shape would be refused", s)
		}
	}
	// Glued to a letter that no hexadecimal id holds, the number is a label and a number — before
	// it or after it: "13812345678ios" and "tel13812345678x" are no hex ids, and were stored as sent.
	for _, s := range []string{"tel13812345678", "user13812345678", "x13812345678", "tel8613812345678", "p1401234567890",
		"x13812345678x", "tel13812345678x", "13812345678ios", "13812345678bx", "dev-13812345678z", "13812345678_ios"} {
		if !ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = false", s)
		}
	}
}

// A label is a label whatever its last letter: "phone" ends in e and "ID" in D, hexadecimal
// digits, but the words are not hexadecimal, and the number glued to them is a phone number
// (these device ids were stored as sent, and reached risk.decisions and ClickHouse). Hexadecimal
// words stay ids.
func TestLabelsEndingInAHexLetterAreLabels(t *testing.T) {
	for _, s := range []string{
		"phone13812345678", "PHONE13812345678", "mobile13812345678", "ID13812345678", "uid13812345678",
		"cid13812345678", "code13812345678", "ID138 1234 5678", "mobile138-1234-5678",
		"phone8613812345678", "phone１３８１２３４５６７８", "dev_phone13812345678",
		"0xfg13812345678", "10xd13812345678",
	} {
		if !ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = false", s)
		}
		if _, err := DecodeCheckRequest([]byte(`{"phone":"13812345678","ip":"1.2.3.4","app_id":"a","device_id":"` + s + `"}`)); err == nil || !strings.HasPrefix(err.Error(), "device_id: looks like it contains a mobile phone number") {
			t.Errorf("device_id %q: err = %v, want it refused as holding a phone number", s, err)
		}
	}
	for _, s := range []string{
		"d13812345678", "AB13812345678", "deadbeef13812345678", "0xd13812345678", "0XAB13812345678",
		"user_3a8f13812345678b", "dev-fd13812345678", strings.Repeat("ab", 40) + "13812345678",
	} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true: a hexadecimal id of this shape would be refused", s)
		}
	}
}

// Ids joining a unix second and a sequence number are accepted, but errors and logs still mask
// their digits: refusing costs the sender an event, masking costs nothing.
func TestSplitNumbersAcceptedButMasked(t *testing.T) {
	for _, s := range []string{"evt_1733390000_5", "1.3812348000", "173339000-15"} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true: an id of this shape would be refused", s)
		}
		if got := MaskPhones(s); strings.ContainsAny(strings.ReplaceAll(got, PhoneMask, ""), "0123456789") {
			t.Errorf("MaskPhones(%q) = %q: digits that read as a phone are shown", s, got)
		}
		if got := Excerpt(s, 64); strings.Contains(got, "3390000") || strings.Contains(got, "3812348000") || strings.Contains(got, "339000") {
			t.Errorf("Excerpt(%q) = %s", s, got)
		}
	}
}

// A number a program read as a floating-point one prints in scientific notation — Go's fmt.Sprint
// of a JSON number decoded into an any, Java's Double.toString — and is as plain to a reader:
// device_id "1.3957240201e+10" was accepted and stored as sent in verify_events (held-out run),
// as "8.613957240203e+12" (+86) was. Trailing zeros are left out of such a writing
// ("1.39572402e+10" is 13957240200). Exponents that make no mobile number, and short mantissas,
// are no phone.
func TestScientificNotationIsAPhone(t *testing.T) {
	for _, c := range []struct{ in, masked string }{
		{"1.3957240201e+10", "<phone>"},
		{"1.3957240202E10", "<phone>"},
		{"8.613957240203e+12", "<phone>"},
		{"1.39572402e+10", "<phone>"},
		{"phone=1.3957240204e+10;", "phone=<phone>;"},
		{"id 1.44123456789e+12 (IoT)", "id <phone> (IoT)"},
	} {
		assertPhoneLike(t, c.in, c.masked, "395724", "412345")
		if _, err := DecodeEvent(eventJSON(t, map[string]any{"device_id": c.in})); err == nil || !strings.Contains(err.Error(), "phone number") {
			t.Errorf("device_id %q: err = %v, want it refused as a phone number", c.in, err)
		}
	}
	for _, s := range []string{"1.5e10", "6.02214076e+23", "1.3957240201e+11", "2.3957240201e+10", "1.395724e+5", "1.3957240201e+100", "a1.3957240201e+10", "1.3957240201"} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true", s)
		}
	}
}

// assertPhoneLike asserts that in holds a phone-like number: refused in a free-text field, masked
// by MaskPhones as masked, and shown by Excerpt without any of digits.
func assertPhoneLike(t *testing.T, in, masked string, digits ...string) {
	t.Helper()
	if !ContainsPhone(in) {
		t.Errorf("ContainsPhone(%q) = false", in)
	}
	if got := MaskPhones(in); got != masked {
		t.Errorf("MaskPhones(%q) = %q, want %q", in, got, masked)
	}
	for _, d := range digits {
		if got := Excerpt(in, 64); strings.Contains(got, d) {
			t.Errorf("Excerpt(%q) = %s shows the number", in, got)
		}
	}
}

// A number a program or a spreadsheet holds as one prints with its thousands grouped —
// JavaScript's toLocaleString, Excel's #,##0, humanize.Comma — and reads as plainly: device_id
// "13,957,240,201" was accepted and stored as sent, and flow "13,957,240,201" came back in the
// 400's content as it was, since commas split numbers. Written inside brackets, a grouping is a
// list ("[10,200,300,400]" in a rule), accepted but masked; groups other than threes are no
// grouping of a number.
func TestGroupedThousandsAreAPhone(t *testing.T) {
	for _, c := range []struct{ in, masked string }{
		{"13,957,240,201", "<phone>"},
		{"8,613,957,240,203", "<phone>"},
		{"13'957'240'204", "<phone>"},
		{"13’957’240’205", "<phone>"},
		{"1,441,234,567,890", "<phone>"},
		{"phone=13,957,240,206;", "phone=<phone>;"},
		{`flow: "13,957,240,207" is not one of`, `flow: "<phone>" is not one of`},
		// As a Chinese input method types it in full-width mode: the detector's digits are any
		// script's, and the grouping read only ASCII digits and commas.
		{"13，957，240，208", "<phone>"},
		{"１３，９５７，２４０，２０９", "<phone>"},
		{"１３,９５７,２４０,２１０", "<phone>"},
		{"13＇957＇240＇211", "<phone>"},
	} {
		assertPhoneLike(t, c.in, c.masked, "957", "234")
	}
	if _, err := DecodeEvent(eventJSON(t, map[string]any{"device_id": "13,957,240,201"})); err == nil || !strings.Contains(err.Error(), "phone number") {
		t.Errorf("device_id 13,957,240,201: err = %v, want it refused as a phone number", err)
	}
	if _, err := DecodeEvent(eventJSON(t, map[string]any{"device_id": "13，957，240，201"})); err == nil || !strings.Contains(err.Error(), "phone number") {
		t.Errorf("device_id 13，957，240，201: err = %v, want it refused as a phone number", err)
	}
	if _, err := DecodeCheckRequest([]byte(`{"phone":"13812345678","ip":"1.2.3.4","app_id":"a","flow":"13,957,240,201"}`)); err == nil || strings.Contains(err.Error(), "957") {
		t.Errorf("flow 13,957,240,201: err = %v, want it refused without the number", err)
	}
	// A list in brackets, accepted (a rule's), its digits masked where shown.
	for _, s := range []string{"x in [10,200,300,400]", "(10,200,300,400)", "{10,200,300,400}"} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true: a list would be refused", s)
		}
		if got := MaskPhones(s); strings.Contains(got, "200,300") {
			t.Errorf("MaskPhones(%q) = %q", s, got)
		}
	}
	// No grouping in threes, or no mobile number once grouped.
	for _, s := range []string{"1, 395, 724, 020", "13,9572,40,201", "13,957,240,2011", "1,395,724,020", "23,957,240,201", "13,957,240.201",
		"13,957'240,201", "13，957,240,201", "１３，９５７，２４０，２０１１", "1,395,724,020,1", "139,572,402,011", "10, 200, 300, 400", "13,957,240,201b"} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true", s)
		}
	}
}

// A value holding a number written across lines shows it masked: line breaks split numbers in
// text of many lines, but flow "138\n0013\n8000" is the number on three lines, and the 400 and
// the log showed "138\\n0013\\n8000". Line breaks that join no number stay.
func TestExcerptMasksANumberAcrossLines(t *testing.T) {
	for _, in := range []string{"138\n0013\n8000", "138\r\n0013\r\n8000", "+86\n138 0013\n8000", "138\u20280013\u20298000", "138\u00850013\v8000\f",
		"flow 138\n0013\n8000 x"} {
		got := Excerpt(in, 64)
		if strings.Contains(got, "0013") || strings.Contains(got, "8000") || !strings.Contains(got, PhoneMask) {
			t.Errorf("Excerpt(%q) = %s shows the number", in, got)
		}
		if _, err := DecodeCheckRequest([]byte(`{"phone":"13812345678","ip":"1.2.3.4","app_id":"a","flow":` + strconv.Quote(in) + `}`)); err == nil || strings.Contains(err.Error(), "0013") {
			t.Errorf("flow %q: err = %v", in, err)
		}
	}
	for in, want := range map[string]string{"line 1\nline 2": `"line 1\nline 2"`, "12\n345": `"12\n345"`, "a\r\nb": `"a\r\nb"`,
		"call 138\n0013\n8000\nnow": `"call <phone>\nnow"`} {
		if got := Excerpt(in, 64); got != want {
			t.Errorf("Excerpt(%q) = %s, want %s", in, got, want)
		}
	}
}

// An invisible character splits nothing: "1\u200b3812345678" shows as 13812345678, so the digits
// on either side of it are one group. Read as two (1 + 10, a group of 10 beside another: how a
// unix second and a sequence number are joined), it was accepted in a device_id and stored as
// sent in risk_decisions. Characters that show as nothing (Hangul fillers) hide nothing either.
func TestInvisibleCharactersDoNotSplitANumber(t *testing.T) {
	for _, s := range []string{
		"1\u200b3812345678", "138123456\u200b78", "1381234567\u200b8", "1\u200d3812345678",
		"1\u00ad3812345678", "1\ufe0f3812345678", "1\U000E00203812345678", "1\u034f3812345678",
		"dev-1\u200b3812345678-x", "138\u316412345678", "1\u31643812345678", "138\uffa012345678",
		"+86\u200b1\u200b3812345678",
	} {
		if !ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = false: it shows as a phone number", s)
		}
		if got := MaskPhones(s); strings.ContainsAny(strings.ReplaceAll(got, PhoneMask, ""), "0123456789") {
			t.Errorf("MaskPhones(%q) = %q", s, got)
		}
	}
	// A visible split still reads as an id.
	for _, s := range []string{"evt_1733390000_5", "evt_1733390000\u200b_5", "1-3812345678"} {
		if ContainsPhone(s) {
			t.Errorf("ContainsPhone(%q) = true: an id of this shape would be refused", s)
		}
	}
}

func TestExcerptMasksEscapesAndTruncates(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"CMCC", 40, `"CMCC"`},
		{"", 40, `""`},
		{"13812345678", 40, `"<phone>"`},
		{"+86 138 1234 5678 is mine", 40, `"<phone> is mine"`},
		{"tel:13812345678", 40, `"tel:<phone>"`},
		{"a\nb\"c\x00", 40, `"a\nb\"c\x00"`},
		{"bad \xff byte", 40, `"bad \xff byte"`},
		{strings.Repeat("x", 50), 40, `"` + strings.Repeat("x", 40) + `…"`},
		{"中文字符", 7, `"中文…"`},                                                                    // never splits a rune
		{strings.Repeat("x", 30) + "138123456789012", 40, `"` + strings.Repeat("x", 30) + `…"`}, // no partial number
		{strings.Repeat("x", 35) + " 13812345678", 40, `"` + strings.Repeat("x", 35) + ` <phone>"`},
		{strings.Repeat("x", 38) + " 13812345678 tail", 40, `"` + strings.Repeat("x", 38) + ` <phone>…"`},
	}
	for _, c := range cases {
		if got := Excerpt(c.in, c.n); got != c.want {
			t.Errorf("Excerpt(%q, %d) = %s, want %s", c.in, c.n, got, c.want)
		}
	}
}

func TestExcerptNeverShowsAPhone(t *testing.T) {
	for _, p := range phoneFormats {
		for _, ctx := range phoneContexts {
			s := strings.Replace(ctx, "%s", p, 1)
			for n := 1; n <= len(s)+2; n++ {
				got := Excerpt(s, n)
				if ContainsPhone(got) || strings.Contains(got, "12345678") || strings.Contains(got, "５６７８") {
					t.Fatalf("Excerpt(%q, %d) = %s shows the number", s, n, got)
				}
				if !utf8.ValidString(got) || len(got) > 4*n+8 {
					t.Fatalf("Excerpt(%q, %d) = %s: invalid UTF-8 or too long", s, n, got)
				}
			}
		}
	}
}

// An escape whose last hex digit would join the digits after it ("\xb1" + ten zeros reads
// "\xb10000000000") shows the character as U+FFFD instead; where no number forms, escapes stay.
func TestExcerptEscapesJoinNoDigitsIntoAPhone(t *testing.T) {
	for _, s := range []string{"\xb10000000000", "\x013812345678", "id\xb13812345678x", "\u00813812345678", "\U000e0001" + "3812345678"} {
		got := Excerpt(s, 64)
		if mayShowPhone(got) {
			t.Errorf("Excerpt(%q) = %s shows a phone-like number", s, got)
		}
		if !utf8.ValidString(got) || len(got) > 4*64+8 {
			t.Errorf("Excerpt(%q) = %s: invalid UTF-8 or too long", s, got)
		}
	}
	if got, want := Excerpt("\xb10000000000", 64), "\"\uFFFD0000000000\""; got != want {
		t.Errorf("Excerpt = %s, want %s", got, want)
	}
	if got, want := Excerpt("a\xb1b\n", 64), `"a\xb1b\n"`; got != want {
		t.Errorf("Excerpt = %s, want %s (escapes kept where they join no number)", got, want)
	}
}

// A backslash quoted as two parts the digits around it: a value's `2\u0031\u0033…` (twelve
// digits glued, no number) showed as "2\\u0031\\u0033…", which reads as 2, a backslash and the
// number 138…, in the error or log line that quotes it; the backslash shows as U+FFFD instead.
func TestExcerptQuotedBackslashPartsNoPhoneOut(t *testing.T) {
	for _, c := range []struct {
		s string
		n int
	}{
		{`2\u0031\u0033\u0038\u0031\u0032\u0033\u0034\u0035\u0036\u0037\u0038`, 200},
		{`f162\u0031\u0033\u0038\u0031\u0032\u0033\u0034\u0035\u0036\u0037\u0038d6f91c85`, 64}, // cut after the 9th digit: 162 and 13812345 make 11
	} {
		got := Excerpt(c.s, c.n)
		if mayShowPhone(got) {
			t.Errorf("Excerpt(%q, %d) = %s shows a phone-like number", c.s, c.n, got)
		}
		if !utf8.ValidString(got) || len(got) > 4*c.n+8 {
			t.Errorf("Excerpt(%q, %d) = %s: invalid UTF-8 or too long", c.s, c.n, got)
		}
	}
	if got, want := Excerpt(`a\u0031\nb`, 64), `"a\\u0031\\nb"`; got != want {
		t.Errorf("Excerpt = %s, want %s (backslashes kept where they part no number)", got, want)
	}
}

// Text whose number shows only decoded is masked decoded; what decoding made of its other escapes
// shows as U+FFFD: netip's `bad bits after slash: "9\xf8a\\u0031…"` came out of MaskPhones with
// a raw 0xf8 byte (invalid UTF-8), and an escaped line break as a line break (a forged log line).
func TestMaskPhonesDecodesNoControlOrInvalidUTF8(t *testing.T) {
	digits := `\u0031\u0033\u0038\u0031\u0032\u0033\u0034\u0035\u0036\u0037\u0038`
	for in, want := range map[string]string{
		`bad bits: "9\xf8a\` + digits + `"`: "bad bits: \"9\uFFFDa\\<phone>\"",
		`x\x0ay ` + digits:                  "x\uFFFDy <phone>",
		`x\u202ey ` + digits:                "x\uFFFDy <phone>",
		`x\u00e9y ` + digits:                "x\u00e9y <phone>",
	} {
		got := MaskPhones(in)
		if got != want {
			t.Errorf("MaskPhones(%q) = %q, want %q", in, got, want)
		}
		if !utf8.ValidString(got) || strings.ContainsFunc(got, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) {
			t.Errorf("MaskPhones(%q) = %q: invalid UTF-8 or a control character", in, got)
		}
	}
}

// A huge value costs a bounded amount and gives a bounded excerpt.
func TestExcerptOfHugeValue(t *testing.T) {
	huge := strings.Repeat("\x01", 200_000) + "13812345678"
	got := Excerpt(huge, 40)
	if len(got) > 4*40+8 {
		t.Errorf("excerpt of 200 KB is %d bytes", len(got))
	}
	// A few small buffers, whatever the size of the input: only a window of it is looked at.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_ = Excerpt(huge, 40)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 2048 {
		t.Errorf("Excerpt of 200 KB allocates %d bytes", per)
	}
}

// A number spread wider than Excerpt's window (long runs of separators) shows none of its digits
// wherever the excerpt is cut.
func TestExcerptOfWidelySpreadNumber(t *testing.T) {
	gap := strings.Repeat(" ", 300)
	s := "x " + "138" + gap + "1234" + gap + "5678" + " y"
	for n := 1; n <= len(s)+2; n++ {
		got := Excerpt(s, n)
		if strings.ContainsAny(got, "0123456789") {
			t.Fatalf("Excerpt(…, %d) = %s shows digits of the number", n, got)
		}
	}
	if got, want := MaskPhones(s), "x <phone> y"; got != want {
		t.Errorf("MaskPhones = %q, want %q", got, want)
	}
}

func TestShowName(t *testing.T) {
	cases := map[string]string{
		"colour":                "colour",
		"Phone":                 "Phone",
		"":                      `""`,
		"has space":             `"has space"`,
		"13812345678":           `"<phone>"`,
		"x-13812345678":         `"x-<phone>"`,
		"line\nbreak":           `"line\nbreak"`,
		"4294967296label":       `"4294967296label"`, // "line 1: 4294967296label" read as a number
		"label-1":               "label-1",
		"riskflow.example:443":  "riskflow.example:443",
		"_1381234567":           `"_1381234567"`,
		"/v1/events":            "/v1/events",
		"ip_v4_addr":            "ip_v4_addr",
		strings.Repeat("k", 50): `"` + strings.Repeat("k", 40) + `…"`,
	}
	for in, want := range cases {
		if got := ShowName(in, 40); got != want {
			t.Errorf("ShowName(%q) = %s, want %s", in, got, want)
		}
		// Beside the digits of a message, the name shown makes no phone-like number.
		if msg := "line 1: " + ShowName(in, 40) + ": unknown field 2"; mayShowPhone(msg) && !strings.Contains(want, PhoneMask) {
			t.Errorf("%q shows a phone-like number", msg)
		}
	}
}

// The digit table reads every decimal digit of every script as its value: digitAt must agree with
// what each script's zero says, and each range must be whole sets of 0-9.
func TestUnicodeDigits(t *testing.T) {
	for _, r := range ndRanges {
		if (r[1]-r[0]+1)%10 != 0 {
			t.Errorf("Nd range %U..%U is not whole sets of ten digits", r[0], r[1])
		}
		for c := r[0]; c <= r[1]; c++ {
			if !unicode.IsDigit(c) {
				t.Errorf("%U in an Nd range is not a digit", c)
			}
		}
	}
	for _, zero := range []rune{'0', '０', '𝟎', '𝟘', '𝟶', '٠', '۰', '०', '০', '๐', '༠', '၀'} {
		for v := range rune(10) {
			s := string(zero + v)
			if d, w := digitAt(s, 0); d != byte('0'+v) || w != len(s) {
				t.Errorf("digitAt(%q) = %q, %d; want %q, %d", s, d, w, '0'+v, len(s))
			}
		}
	}
	for i, o := range otherDigits {
		if i > 0 && o.lo <= otherDigits[i-1].hi || o.hi < o.lo || int(o.v)+int(o.hi-o.lo) > 9 {
			t.Errorf("otherDigits[%d] = %U..%U from %d: out of order or past 9", i, o.lo, o.hi, o.v)
		}
		for c := o.lo; c <= o.hi; c++ {
			if !unicode.Is(unicode.No, c) && !unicode.Is(unicode.So, c) {
				t.Errorf("%U in otherDigits is no other number", c)
			}
		}
	}
	for s, want := range map[string]byte{"①": '1', "⑨": '9', "⓪": '0', "¹": '1', "³": '3', "⁰": '0', "₉": '9', "❶": '1', "⑴": '1', "㊀": '1', "㈨": '9', "\U0001F101": '0', "\U0001F10A": '9'} {
		if d, w := digitAt(s, 0); d != want || w != len(s) {
			t.Errorf("digitAt(%q) = %q, %d; want %q, %d", s, d, w, want, len(s))
		}
	}
	for _, s := range []string{"a", "中", "\u00a0", "Ⅷ", "⑩", "\xff"} {
		if _, w := digitAt(s, 0); w != 0 {
			t.Errorf("digitAt(%q) reads a digit", s)
		}
	}
}

func TestContainsPhoneDoesNotAllocate(t *testing.T) {
	s := "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f +86 138 1234 5678"
	if a := testing.AllocsPerRun(100, func() { ContainsPhone(s) }); a != 0 {
		t.Errorf("ContainsPhone allocates %v times", a)
	}
}

func TestMaskPhones(t *testing.T) {
	cases := map[string]string{
		"":                                   "",
		"no number here":                     "no number here",
		"publish failed for 13812345678":     "publish failed for <phone>",
		"a +86 138 1234 5678, b tel:1381234": "a <phone>, b tel:1381234",
		"13812345678\n13912345678":           "<phone>\n<phone>",
		"bad app %2B8613812345678":           "bad app <phone>",
		"ids 138/1234/5678 and １３８　１２３４　５６７８": "ids <phone> and <phone>",
	}
	for in, want := range cases {
		if got := MaskPhones(in); got != want {
			t.Errorf("MaskPhones(%q) = %q, want %q", in, got, want)
		}
	}
}

// An IPv4 address (with its port) is shown as it is — /readyz and errors name the broker or the
// server they cannot reach — while a phone number beside one, or after a dotted run that is no
// address, is still masked.
func TestAddressesAreNotPhones(t *testing.T) {
	for s, want := range map[string]string{
		"kafka: dial tcp 127.0.0.1:19092: connection refused": "kafka: dial tcp 127.0.0.1:19092: connection refused",
		"from 192.168.100.10 for 13812345678":                 "from 192.168.100.10 for <phone>",
		"1.2.3.4 138 1234 5678":                               "1.2.3.4 <phone>",
		"1.2.3.4:13812345678":                                 "1.2.3.4:<phone>",
		"1.2.3.4.13812345678":                                 "1.2.3.4.<phone>",
		"1.2.3.999 13812345678":                               "1.2.3.999 <phone>",
		"138.001.234.56":                                      "<phone>", // leading zeros: no address
		"10.0.0.1:19092 and 138.001.234.56":                   "10.0.0.1:19092 and <phone>",
	} {
		if got := MaskPhones(s); got != want {
			t.Errorf("MaskPhones(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"evt-1":              "evt-1",
		"evt-1\u202e":        `evt-1\u202E`,
		"a\u200bb\u2066c":    `a\u200Bb\u2066c`,
		"事件\u00ad":           `事件\u00AD`,
		"plain unicode 事件 ✓": "plain unicode 事件 ✓",
	} {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%q) = %q, want %q", in, got, want)
		}
	}
}
