package main

import (
	"os"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// tempDir is t.TempDir for this package's tests, in a directory whose path holds nothing that
// reads as a phone number. riskflow masks numbers in every path it prints (schemas.MaskPhones),
// and t.TempDir's random digits followed by its /001 read as one every few dozen directories
// (/tmp/TestRejectedPackExitsAlike14890371/002 printed as …Alike<phone>/rules.yaml): a test
// expecting the path as given then failed by chance.
func tempDir(t testing.TB) string {
	t.Helper()
	for range 100 {
		d, err := os.MkdirTemp("", "riskflow-test-")
		if err != nil {
			t.Fatal(err)
		}
		if schemas.MaskPhones(d) == d {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
		os.Remove(d)
	}
	t.Fatalf("no temporary directory under %s without a phone-like number in its path (TMPDIR)", os.TempDir())
	return ""
}
