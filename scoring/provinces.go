package scoring

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/riskflow/riskflow/schemas"
)

// Provinces maps 7-digit number segments to the province where the carrier registered them (号码
// 归属地), for geo_mismatch. The table is data the risk team brings (carriers publish it; it is not
// shipped here). Without it phone_province is "" and geo_mismatch cannot fire.
//
// File format, one segment a line, '#' starts a comment, province names as GeoLite2 spells the
// first subdivision (English): `1380013<TAB>Guangdong`.
type Provinces struct {
	bySegment map[uint64]string
}

// ParseProvinces reads the segment→province format; errors name the line.
func ParseProvinces(r io.Reader) (*Provinces, error) {
	p := &Provinces{bySegment: map[uint64]string{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		seg, prov, ok := strings.Cut(strings.TrimSpace(text), "\t")
		if strings.TrimSpace(text) == "" {
			continue
		}
		seg, prov = strings.TrimSpace(seg), strings.TrimSpace(prov)
		if !ok || prov == "" {
			return nil, fmt.Errorf("line %d: expected SEGMENT<TAB>PROVINCE", line)
		}
		if len(seg) != 7 || strings.Trim(seg, "0123456789") != "" || seg[0] != '1' {
			return nil, fmt.Errorf("line %d: segment %s is not 7 digits starting with 1", line, schemas.Excerpt(seg, 16))
		}
		p.bySegment[prefixKey7(seg)] = prov
	}
	if err := sc.Err(); err != nil {
		return nil, scanError("read provinces", line, err)
	}
	return p, nil
}

// LoadProvinces reads a segment→province file.
func LoadProvinces(path string) (*Provinces, error) {
	return loadFile(path, "provinces", ParseProvinces)
}

// Len is the number of segments.
func (p *Provinces) Len() int {
	if p == nil {
		return 0
	}
	return len(p.bySegment)
}

func (p *Provinces) of(prefix uint64) string {
	if p == nil {
		return ""
	}
	return p.bySegment[prefix]
}

// WithProvinces sets the segment→province table (default: none; phone_province stays "").
func WithProvinces(p *Provinces) Option { return func(s *Scorer) { s.provinces = p } }
