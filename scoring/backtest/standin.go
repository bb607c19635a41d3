package backtest

import (
	"encoding/hex"
	"errors"
	"strconv"
)

// standIns gives every stored phone hash a stand-in number for the replay (see the package
// documentation): the stored 7-digit segment followed by 4 digits derived from the hash,
// unique per hash within the run.
type standIns struct {
	byHash   map[[16]byte]uint64    // first 16 bytes of the keyed hash → stand-in number, | inPeriod once compared
	taken    map[uint32]*suffixBits // segment → suffixes in use
	buf      []byte
	compared int // numbers of compared events (not of the warm-up alone)
}

// inPeriod marks a stand-in of byHash whose number an event of the period (compared, not warm-up)
// carried; stand-ins are below 2·10¹⁰.
const inPeriod = 1 << 63

// suffixBits is a set of the 10,000 possible last-4-digit suffixes of one segment.
type suffixBits [157]uint64

func (b *suffixBits) has(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b *suffixBits) set(i uint64)      { b[i/64] |= 1 << (i % 64) }

func newStandIns() *standIns {
	return &standIns{byHash: map[[16]byte]uint64{}, taken: map[uint32]*suffixBits{}, buf: make([]byte, 0, 11)}
}

// Reasons a stored event cannot be replayed; they key Report.SkipReasons.
const (
	skipBadHash     = "phone_hash is not 64 hex digits"
	skipBadSegment  = "phone_segment is not 7 digits starting with 1"
	skipSegmentFull = "more than 10000 distinct phone hashes in one segment"
	skipBadIP       = "ip is not an IP address"
	skipNoEventID   = "event_id is empty"
)

var (
	errBadHash     = errors.New(skipBadHash)
	errBadSegment  = errors.New(skipBadSegment)
	errSegmentFull = errors.New(skipSegmentFull)
)

// phone returns the stand-in number of the number whose keyed hash is hash (64 hex digits)
// and whose stored segment is segment; compared: an event of the period carries it (Compared).
func (s *standIns) phone(hash, segment string, compared bool) (string, error) {
	if len(hash) != 64 {
		return "", errBadHash
	}
	var key [16]byte
	if _, err := hex.Decode(key[:], []byte(hash[:32])); err != nil {
		return "", errBadHash
	}
	if n, ok := s.byHash[key]; ok {
		if compared && n&inPeriod == 0 {
			s.byHash[key] = n | inPeriod
			s.compared++
		}
		return s.format(n &^ inPeriod), nil
	}
	seg, ok := parseSegment(segment)
	if !ok {
		return "", errBadSegment
	}
	bits := s.taken[seg]
	if bits == nil {
		bits = new(suffixBits)
		s.taken[seg] = bits
	}
	// The hash is uniformly distributed, so its first 8 bytes pick a suffix at random. Two
	// hashes that pick the same suffix in one segment would merge two numbers into one: the
	// later one moves on to the next free suffix instead (linear probing).
	start := (uint64(key[0])<<56 | uint64(key[1])<<48 | uint64(key[2])<<40 | uint64(key[3])<<32 |
		uint64(key[4])<<24 | uint64(key[5])<<16 | uint64(key[6])<<8 | uint64(key[7])) % 10000
	for i := uint64(0); i < 10000; i++ {
		suf := (start + i) % 10000
		if bits.has(suf) {
			continue
		}
		bits.set(suf)
		n := uint64(seg)*10000 + suf
		s.byHash[key] = n
		if compared {
			s.byHash[key] = n | inPeriod
			s.compared++
		}
		return s.format(n), nil
	}
	return "", errSegmentFull
}

// Compared is the number of distinct numbers the events of the period carried.
func (s *standIns) Compared() int { return s.compared }

func (s *standIns) format(n uint64) string {
	s.buf = strconv.AppendUint(s.buf[:0], n, 10)
	return string(s.buf)
}

// parseSegment accepts the 7 digits of a mainland mobile number's segment: 1xxxxxx.
func parseSegment(seg string) (uint32, bool) {
	if len(seg) != 7 || seg[0] != '1' {
		return 0, false
	}
	var v uint32
	for i := 0; i < 7; i++ {
		d := seg[i] - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + uint32(d)
	}
	return v, true
}
