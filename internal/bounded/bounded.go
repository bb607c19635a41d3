// Package bounded runs code under test within a time bound, turning a panic or a hang into a
// test failure that says what was running: for fuzz targets, whose inputs may do either.
package bounded

import (
	"runtime/debug"
	"testing"
	"time"
)

// Run calls f and returns its result. A panic in f fails t with the panic and its stack; f still
// running after d fails t too (f's goroutine is left behind: the test ends). what names the call
// in the failure ("Compile of a 40-byte pack").
func Run[T any](t testing.TB, d time.Duration, what string, f func() T) T {
	t.Helper()
	type result struct {
		v     T
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r.panic, r.stack = v, debug.Stack()
			}
			done <- r
		}()
		r.v = f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("%s panicked: %v\n%s", what, r.panic, r.stack)
		}
		return r.v
	case <-timer.C:
		t.Fatalf("%s did not return within %s", what, d)
		var zero T
		return zero
	}
}
