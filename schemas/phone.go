package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// PhoneHasher computes the keyed hash that stands for a phone number everywhere past the decoder:
// HMAC-SHA256 with a secret key, so the stored hashes cannot be reversed by hashing all ~10^10
// numbers without the key. Safe for concurrent use.
type PhoneHasher struct {
	pool sync.Pool // of *phoneMAC
}

// phoneMAC is a keyed HMAC with a scratch buffer for the number, so that hashing allocates nothing.
type phoneMAC struct {
	h   hash.Hash
	buf []byte
}

// NewPhoneHasher returns a hasher keyed by key (must not be empty).
func NewPhoneHasher(key []byte) *PhoneHasher {
	k := append([]byte(nil), key...)
	return &PhoneHasher{pool: sync.Pool{New: func() any {
		return &phoneMAC{h: hmac.New(sha256.New, k), buf: make([]byte, 0, 32)}
	}}}
}

// Sum returns the 32-byte HMAC of the normalized phone number.
func (h *PhoneHasher) Sum(phone string) [32]byte {
	m := h.pool.Get().(*phoneMAC)
	m.h.Reset()
	m.buf = append(m.buf[:0], phone...)
	m.h.Write(m.buf)
	var out [32]byte
	m.buf = m.h.Sum(m.buf[:0])
	copy(out[:], m.buf)
	h.pool.Put(m)
	return out
}

// Hex returns the HMAC as 64 lower-case hex digits (the stored form).
func (h *PhoneHasher) Hex(phone string) string {
	s := h.Sum(phone)
	return hex.EncodeToString(s[:])
}

// MaskPhone returns the display form 1381234****: the number segment (first 7 digits) and one
// star per remaining digit. It deliberately reveals nothing beyond the segment: the common
// 138****8000 form keeps the last 4 digits, and stored next to the segment (as riskflow stores
// both) the two would spell out the whole number.
func MaskPhone(phone string) string {
	return string(AppendMaskedPhone(make([]byte, 0, len(phone)), phone))
}

// AppendMaskedPhone appends MaskPhone(phone) to b without allocating.
func AppendMaskedPhone(b []byte, phone string) []byte {
	keep := min(len(phone), 7)
	if len(phone) <= 7 {
		keep = 0
	}
	b = append(b, phone[:keep]...)
	for range len(phone) - keep {
		b = append(b, '*')
	}
	return b
}

// PhoneSegment returns the number segment: the first 7 digits (the block a carrier allocates, and
// everything but the last 4 digits of an 11-digit number).
func PhoneSegment(phone string) string {
	if len(phone) < 7 {
		return phone
	}
	return phone[:7]
}
