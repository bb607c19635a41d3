//go:build race

package features_test

// raceEnabled: the race detector slows the state down about twentyfold, so the memory test
// builds a smaller one.
const raceEnabled = true
