package scoring

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/riskflow/riskflow/schemas"
)

// Ported lists numbers that moved to another carrier (携号转网, number portability since
// 2019-12-01), as the operator's number-portability lookup returns them. For a listed number
// carrier_mismatch compares the gateway's carrier with the carrier the number was ported to, or
// stays false when the file does not say which; phone_ported is true. Without the list,
// carrier_mismatch compares with the segment's carrier and the default pack keeps it soft (300).
//
// Like the allow/block lists, the numbers are keyed as the feature state keys phones (a keyed
// hash, Scorer.phoneKeyOf) when a scorer takes the list; the scorer keeps only the keyed form.
//
// File format, one number a line, optionally followed by the carrier it now belongs to (CM, CU or
// CT); '#' starts a comment:
//
//	13800138000 CU
//	+8613912345678
type Ported struct {
	to map[string]string // normalized number → current carrier ("" unknown)
}

// keyedPorted is a ported list as one scorer reads it: numbers keyed as its state keys phones.
type keyedPorted map[uint64]string

// keyed returns p with its numbers keyed by key (nil for a nil list).
func (p *Ported) keyed(key func(phone string) uint64) keyedPorted {
	if p == nil {
		return nil
	}
	k := make(keyedPorted, len(p.to))
	for phone, carrier := range p.to {
		k[key(phone)] = carrier
	}
	return k
}

// ParsePorted reads the ported-numbers format; errors name the line and never echo the number.
func ParsePorted(r io.Reader) (*Ported, error) {
	p := &Ported{to: map[string]string{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 {
			return nil, fmt.Errorf("line %d: expected `NUMBER [CM|CU|CT]`, got %d fields", line, len(f))
		}
		phone, err := schemas.NormalizePhone(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: number: %w", line, err)
		}
		carrier := ""
		if len(f) == 2 {
			switch c := f[1]; c {
			case schemas.CarrierMobile, schemas.CarrierUnicom, schemas.CarrierTelecom:
				carrier = c
			default:
				return nil, fmt.Errorf("line %d: carrier %s is not CM, CU or CT", line, schemas.Excerpt(c, 16))
			}
		}
		p.to[phone] = carrier
	}
	if err := sc.Err(); err != nil {
		return nil, scanError("read ported numbers", line, err)
	}
	return p, nil
}

// LoadPorted reads a ported-numbers file.
func LoadPorted(path string) (*Ported, error) { return loadFile(path, "ported numbers", ParsePorted) }

// Len is the number of listed numbers.
func (p *Ported) Len() int {
	if p == nil {
		return 0
	}
	return len(p.to)
}

// lookup reports whether the phone (by state key) is listed and the carrier it was ported to.
func (k keyedPorted) lookup(phone uint64) (carrier string, ok bool) {
	carrier, ok = k[phone]
	return carrier, ok
}

// WithPorted sets the ported-numbers list (default: none).
func WithPorted(p *Ported) Option { return func(s *Scorer) { s.portedSrc = p } }
