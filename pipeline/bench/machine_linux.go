package bench

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// clockTicks is the unit of /proc/PID/stat's times (USER_HZ), 100 on every Linux architecture Go
// supports.
const clockTicks = 100

// othersCPU is the CPU time (user + system, interrupts included) the machine spent outside this
// process so far, and false if /proc/stat cannot be read: the machine's busy time less this
// process's own. Unlike a sum over /proc/PID, a process that ends between two readings does not
// take its CPU out of their difference (go test's other packages and compilers come and go).
func othersCPU() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	busy, ok := parseCPUBusy(data)
	if !ok {
		return 0, false
	}
	return time.Duration(busy)*time.Second/clockTicks - processCPU(), true
}

// parseCPUBusy returns the busy ticks of the first line of /proc/stat ("cpu  user nice system idle
// iowait irq softirq steal guest guest_nice"): every field but idle and iowait, guest time being
// counted in user already.
func parseCPUBusy(data []byte) (uint64, bool) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, true
}
