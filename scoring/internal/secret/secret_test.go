package secret

import "testing"

func TestEqual(t *testing.T) {
	for _, c := range []struct {
		given, want string
		eq          bool
	}{
		{"s3cret", "s3cret", true},
		{"s3cret", "s3creT", false},
		{"s3cre", "s3cret", false},
		{"s3cret\x00", "s3cret", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := Equal(c.given, c.want); got != c.eq {
			t.Errorf("Equal(%q, %q) = %v, want %v", c.given, c.want, got, c.eq)
		}
	}
}
