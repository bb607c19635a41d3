package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseCPUBusy(t *testing.T) {
	got, ok := parseCPUBusy([]byte("cpu  1000 20 300 9000 40 5 6 7 100 0\ncpu0 500 10 150 4500 20 2 3 3 50 0\n"))
	if !ok || got != 1000+20+300+5+6+7 {
		t.Fatalf("parseCPUBusy = %d, %v; want 1338, true (idle, iowait and guest left out)", got, ok)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu  1 2 3", "cpu  1 2 3 x 5 6 7 8"} {
		if _, ok := parseCPUBusy([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// spinChildEnv makes the test binary a child that uses spinCPU of CPU, says so and waits.
const spinChildEnv = "RISKFLOWTEST_SPIN_CHILD"

const spinCPU = 300 * time.Millisecond

func TestMain(m *testing.M) {
	if os.Getenv(spinChildEnv) != "" {
		for processCPU() < spinCPU {
			for i := 0; i < 1_000_000; i++ {
				spinSink += i
			}
		}
		fmt.Println("spun")
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var spinSink int

func TestOthersCPUCountsAnotherProcess(t *testing.T) {
	before, ok := othersCPU()
	if !ok {
		t.Fatal("othersCPU cannot read /proc on Linux")
	}
	// A child that has used spinCPU (and is still alive, so that /proc still lists it) must show;
	// this process's own CPU must not.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), spinChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "spun\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	after, _ := othersCPU()
	if got := after - before; got < spinCPU-10*time.Millisecond {
		t.Fatalf("others used %s by othersCPU while a child used at least %s", got, spinCPU)
	}
}
