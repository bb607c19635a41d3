//go:build !unix

package scoring_test

// cpuTime is not measured here: cpu-ns/op is not reported.
func cpuTime() int64 { return -1 }
