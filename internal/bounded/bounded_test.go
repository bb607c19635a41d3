package bounded

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Run returns f's result, and fails the test on a panic or a hang. The failing cases run in a
// child process of this test binary (a failed test cannot be observed from inside it).
func TestRun(t *testing.T) {
	switch os.Getenv("BOUNDED_CASE") {
	case "panic":
		Run(t, time.Minute, "the panicking call", func() int { panic("boom") })
		return
	case "hang":
		Run(t, 50*time.Millisecond, "the hanging call", func() int { time.Sleep(time.Minute); return 1 })
		return
	}
	if got := Run(t, time.Minute, "a call", func() int { return 7 }); got != 7 {
		t.Errorf("Run = %d, want 7", got)
	}
	for c, want := range map[string]string{
		"panic": "the panicking call panicked: boom",
		"hang":  "the hanging call did not return within 50ms",
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRun$")
		cmd.Env = append(os.Environ(), "BOUNDED_CASE="+c)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("%s: err %v, output lacks %q:\n%s", c, err, want, out)
		}
	}
}
