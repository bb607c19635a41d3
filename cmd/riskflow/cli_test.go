package main

import (
	"context"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/internal/syncbuf"
)

// One concept, one flag name: demo's --keep-topics is --keep, as bench's; the old spelling still
// works, with a warning on stderr.
func TestDemoKeepIsBenchKeep(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{[]string{"demo", "--mode", "bogus", "--keep"}, false},
		{[]string{"demo", "--keep-topics", "--mode", "bogus"}, true},
		{[]string{"demo", "--keep-topics=false", "--mode", "bogus"}, true},
	} {
		r := runCmd(t, context.Background(), c.args...)
		// The flags parsed; the error is the one --mode bogus makes.
		if r.code != 2 || !strings.Contains(r.stderr, `--mode: "bogus" is not dev or real`) {
			t.Errorf("%q: exit %d\n%s", c.args, r.code, r.stderr)
		}
		if warned := strings.Contains(r.stderr, "riskflow: --keep-topics is deprecated: use --keep\n"); warned != c.warn {
			t.Errorf("%q: deprecation warning %v, want %v\n%s", c.args, warned, c.warn, r.stderr)
		}
	}
	for _, cmd := range []string{"demo", "bench"} {
		if r := runCmd(t, context.Background(), cmd, "--help"); !strings.Contains(r.stdout, "\n  --keep\n") {
			t.Errorf("%s --help lacks --keep:\n%s", cmd, r.stdout)
		}
	}
}

// A deprecated spelling sets the flag it stands for, true/false ones alone too, and warns once.
func TestDeprecatedFlag(t *testing.T) {
	var errw syncbuf.Buffer
	fs := newFlagSet("t", nil)
	keep := fs.Bool("keep", false, "")
	n := fs.Int("n", 0, "")
	deprecatedFlag(fs, "keep-topics", "keep", &errw)
	deprecatedFlag(fs, "count", "n", &errw)
	if err := parseFlags(fs, []string{"--keep-topics", "a", "--count", "3", "--keep-topics", "--count=4"}); err != nil {
		t.Fatal(err)
	}
	if !*keep || *n != 4 || strings.Join(fs.Args(), ",") != "a" {
		t.Errorf("keep %v n %d args %q; want true 4 [a]", *keep, *n, fs.Args())
	}
	if got := errw.String(); got != "riskflow: --keep-topics is deprecated: use --keep\nriskflow: --count is deprecated: use --n\n" {
		t.Errorf("warnings:\n%s", got)
	}
}
