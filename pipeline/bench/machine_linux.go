package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTicks is the unit of /proc/PID/stat's times (USER_HZ), 100 on every Linux architecture Go
// supports.
const clockTicks = 100

// othersCPU is the CPU time (user + system) the machine's other processes have used so far, and
// false if /proc cannot be read. A process that starts or ends between two readings is counted
// wrongly in their difference; the broker and the services a benchmark competes with live for its
// whole run.
func othersCPU() (time.Duration, bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, false
	}
	self := strconv.Itoa(os.Getpid())
	var ticks uint64
	for _, p := range stats {
		if filepath.Base(filepath.Dir(p)) == self {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		if t, ok := parseStatTimes(data); ok {
			ticks += t
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, true
}

// parseStatTimes returns utime + stime from the text of /proc/PID/stat. The command name (field 2)
// is in parentheses and may hold spaces and parentheses: fields are counted after the last ')'.
func parseStatTimes(data []byte) (uint64, bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	// After ')': state (field 3) … utime is field 14, stime field 15.
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	s, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + s, true
}
