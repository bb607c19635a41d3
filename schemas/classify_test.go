package schemas

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type ruleErr struct{}

func (ruleErr) Error() string        { return "rule r1: no such key" }
func (ruleErr) Is(target error) bool { return target == ErrPartial }

func TestClassify(t *testing.T) {
	noPack := Unavailable("no rule pack loaded")
	noHasher := Misconfigured("no phone hasher configured")
	bad := &FieldError{Field: "ip", Reason: "not an IP address"}
	for _, c := range []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Proceed},
		{"a rule failed at run time", fmt.Errorf("score event e1: %w", errors.Join(ruleErr{}, ruleErr{})), Proceed},
		{"no rule pack yet", fmt.Errorf("score event e1: %w", noPack), Retry},
		{"a field", fmt.Errorf("decode event: %w", bad), DeadLetter},
		{"misconfigured", fmt.Errorf("score event e1: %w", noHasher), Fail},
		{"unknown", errors.New("connection reset"), Retry},
		{"cancelled", context.Canceled, Retry},
		// The gravest class of a join decides.
		{"partial and unavailable", errors.Join(ruleErr{}, noPack), Retry},
		{"bad input and misconfigured", errors.Join(bad, noHasher), Fail},
		{"partial and bad input", errors.Join(ruleErr{}, bad), DeadLetter},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: %v → %s, want %s", c.name, c.err, got, c.want)
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", noPack), noPack) || noPack.Error() != "no rule pack loaded" {
		t.Error("a classed sentinel is not itself through wrapping, or its message changed")
	}
}
