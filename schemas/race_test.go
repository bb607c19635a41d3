//go:build race

package schemas

// raceEnabled makes the long randomized tests shorter under the race detector, which slows them
// tenfold and has nothing to find in single-goroutine code.
const raceEnabled = true
