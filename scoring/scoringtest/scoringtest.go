// Package scoringtest builds scorers for other packages' tests.
package scoringtest

import (
	"testing"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/scoring"
)

// DefaultPack returns a scorer with the default configuration and opts, running the default rule
// pack, as a node started without scoring.rules does; it fails tb if either cannot be built.
func DefaultPack(tb testing.TB, opts ...scoring.Option) *scoring.Scorer {
	tb.Helper()
	s, err := scoring.New(scoring.Config{}, opts...)
	if err != nil {
		tb.Fatalf("scorer: %v", err)
	}
	p, err := rules.Compile(packs.Default(), s.Env())
	if err != nil {
		tb.Fatalf("default pack: %v", err)
	}
	s.SetPack(p)
	return s
}
