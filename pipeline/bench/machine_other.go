//go:build !linux

package bench

import "time"

// othersCPU is not measured here.
func othersCPU() (time.Duration, bool) { return 0, false }
