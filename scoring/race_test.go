//go:build race

package scoring

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = true
