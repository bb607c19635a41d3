package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// A phone-hash key with a trailing newline — what a YAML block scalar ("phone_hash_key: |") keeps,
// and the environment, a _FILE and --set trim — is warned about: two nodes given the same key the
// two ways stored different hashes of every number.
func TestWeakHashKeyWithANewline(t *testing.T) {
	if got := weakHashKey("0123456789abcdef0123456789abcdef\n"); !strings.Contains(got, "begins or ends with a space or a newline") {
		t.Errorf("weakHashKey(key + newline) = %q", got)
	}
	if got := weakHashKey("0123456789abcdef0123456789abcdef"); got != "" {
		t.Errorf("weakHashKey(key) = %q", got)
	}
}

// serve warns about a phone-hash key that does not keep stored hashes from being reversed: a short
// one (found offline from one known number's hash) or the dev key printed in this binary. It took
// "k" and the dev key silently.
func TestServeWarnsAboutAWeakPhoneHashKey(t *testing.T) {
	for key, want := range map[string]string{
		"k":                                "scoring.phone_hash_key is 1 bytes",
		"short-key-15byt":                  "scoring.phone_hash_key is 15 bytes",
		devHashKey:                         "scoring.phone_hash_key is the dev key",
		"a-random-key-of-at-least-16-b":    "",
		"0123456789abcdef0123456789abcdef": "",
	} {
		var stderr bytes.Buffer
		// A rule pack that does not exist stops serve right after its start-up checks.
		err := cmdServe(context.Background(), []string{"--roles", "scorer",
			"--set", "scoring.phone_hash_key=" + key, "--set", "scoring.rules=/nonexistent/riskflow-pack.yaml",
			"--set", "scoring.segments=", "--set", "kafka.brokers=127.0.0.1:1"}, &bytes.Buffer{}, &stderr)
		if err == nil {
			t.Fatalf("key %q: serve started with a rule pack that does not exist", key)
		}
		got := stderr.String()
		if want == "" && strings.Contains(got, "phone_hash_key") || want != "" && !strings.Contains(got, want) {
			t.Errorf("key %q: stderr %q, want a warning containing %q", key, got, want)
		}
		if len(key) > 4 && strings.Contains(got, key) {
			t.Errorf("key %q: stderr shows the key: %q", key, got)
		}
	}
}

// A key a role needs, set from an empty RISKFLOW_*_FILE file, is said to be so, naming the _FILE
// variable and the file: serve said "required (RISKFLOW_SCORING_PHONE_HASH_KEY)", a variable the
// operator had not set, and nothing of the file mounted empty. Set empty any other way, the
// message is as it was.
func TestServeNamesTheEmptyFileOfANeededKey(t *testing.T) {
	empty := writeFile(t, "hashkey", "\n")
	t.Setenv("RISKFLOW_SCORING_PHONE_HASH_KEY_FILE", empty)
	args := []string{"--roles", "scorer", "--set", "scoring.segments=", "--set", "kafka.brokers=127.0.0.1:1"}
	err := cmdServe(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
	// The path as the message shows it: digits of the test's temporary directory that read as a
	// phone number are masked (they did once in a full run).
	want := "scoring.phone_hash_key: required (RISKFLOW_SCORING_PHONE_HASH_KEY); it keys the stored phone hashes (env RISKFLOW_SCORING_PHONE_HASH_KEY_FILE: " + schemas.MaskPhones(empty) + " is an empty file)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("an empty key file: %v\nwant a line %q", err, want)
	}
	if !errors.As(err, new(configError)) {
		t.Errorf("an empty key file: %T, want a configuration error (exit 2)", err)
	}
	os.Unsetenv("RISKFLOW_SCORING_PHONE_HASH_KEY_FILE")
	t.Setenv("RISKFLOW_SCORING_PHONE_HASH_KEY", "")
	err = cmdServe(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.HasSuffix(err.Error(), "scoring.phone_hash_key: required (RISKFLOW_SCORING_PHONE_HASH_KEY); it keys the stored phone hashes") {
		t.Errorf("an empty variable: %v, want the message as it was", err)
	}
}
