package schemas

import (
	"strings"
	"testing"
)

// A number as a complaint or a ticket wrote it: every common writing of one mainland number is
// read as that number (0086, +86 and 86 prefixes, spaces, dashes, dots, brackets,
// full-width digits and separators, tel:), and what is not one number is refused without echoing.
// A 13-digit IoT number reads with each prefix an 11-digit one takes: "86 1440…" was refused
// ("must start with 1") where "+86 1440…" and "0086 1440…" were read.
func TestReadWrittenIoTPhone(t *testing.T) {
	for _, w := range []string{"1440123456789", "+86 1440 1234 56789", "0086 1440123456789", "86 1440 1234 56789", "861440123456789"} {
		if got, err := ReadWrittenPhone(w); err != nil || got != "1440123456789" {
			t.Errorf("ReadWrittenPhone(%q) = %q, %v; want 1440123456789", w, got, err)
		}
	}
}

func TestReadWrittenPhone(t *testing.T) {
	for _, w := range []string{
		"13812345678", "+86 138 1234 5678", "+86-138-1234-5678", "0086 138 1234 5678", "0086-13812345678",
		"86 138 1234 5678", "8613812345678", "(138) 1234 5678", "+86 (138) 1234-5678", "138.1234.5678", "138/1234/5678",
		"tel:+86-138-1234-5678", " 138 1234 5678 ", "１３８　１２３４　５６７８", "＋８６ １３８－１２３４－５６７８",
		"138\u00a01234\u00a05678", "138\u20111234\u20115678", "138\u200b1234\u200b5678",
	} {
		got, err := ReadWrittenPhone(w)
		if err != nil || got != "13812345678" {
			t.Errorf("ReadWrittenPhone(%q) = %q, %v; want 13812345678", w, got, err)
		}
	}
	for _, w := range []string{"", "138 1234 567", "+1 415 555 0100", "0085 138 1234 5678", "138x1234x5678", "13812345678 ext 2", "010-1234-5678", "+86 +138 1234 5678"} {
		got, err := ReadWrittenPhone(w)
		if err == nil {
			t.Errorf("ReadWrittenPhone(%q) = %q, want an error", w, got)
		} else if strings.Contains(err.Error(), "5678") || strings.Contains(err.Error(), "0100") {
			t.Errorf("ReadWrittenPhone(%q): the error shows the number: %v", w, err)
		}
	}
}
