package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/pipeline/chsink"
)

// The bulk-insert baseline's clickhouse-client gets the password in a file only this user reads,
// removed after the run, not on its command line: it ran with --password SECRET, which ps and
// /proc/PID/cmdline show to every user of the machine while it runs.
func TestCHClientPasswordIsNotOnTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	fake := filepath.Join(dir, "clickhouse-client")
	// Records its arguments, and the file given with --config-file and its mode, as it runs.
	script := `#!/bin/sh
echo "$@" > ` + seen + `.args
while [ $# -gt 0 ]; do
  if [ "$1" = --config-file ]; then cat "$2" > ` + seen + `.config; stat -c %a "$2" > ` + seen + `.mode; echo "$2" > ` + seen + `.path; fi
  shift
done
`
	if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := newCHClient(ArchiverOptions{Client: fake, ClickHouse: chsink.Config{Addr: "127.0.0.1:9000", Username: "bench", Password: "s3cret<&>pw"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.run(context.Background(), nil, io.Discard, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	read := func(suffix string) string {
		b, err := os.ReadFile(seen + suffix)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if args := read(".args"); strings.Contains(args, "s3cret") || strings.Contains(args, "--password") {
		t.Errorf("clickhouse-client ran with %q: the password on its command line", args)
	}
	if cfg := read(".config"); !strings.Contains(cfg, "<password>s3cret&lt;&amp;&gt;pw</password>") {
		t.Errorf("config file %q lacks the password, escaped", cfg)
	}
	if mode := read(".mode"); mode != "600" {
		t.Errorf("config file mode %s, want 600", mode)
	}
	if _, err := os.Stat(read(".path")); !os.IsNotExist(err) {
		t.Errorf("the credentials file is left behind: %v", err)
	}
}
