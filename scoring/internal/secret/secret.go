// Package secret compares secrets without telling anything about them through timing.
package secret

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Equal reports whether given equals want in time that depends on neither: both are hashed
// first, so the comparison always runs over 32 bytes. subtle.ConstantTimeCompare alone returns at
// once when the lengths differ, which tells an attacker the length of the secret.
func Equal(given, want string) bool {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
