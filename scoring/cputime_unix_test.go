//go:build unix

package scoring_test

import "syscall"

// cpuTime is the CPU time the process has used (user and system, every thread: the garbage
// collector's too), in nanoseconds: on a machine shared with other work, cpu-ns/op is steadier
// than ns/op.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
