package scoring

import (
	"testing"
	"time"
)

// The time of a hop reads as people write it at every edge: seconds under a minute (a 1 s hop
// read "0.02 min"), no "0 s" or "0 min" part, a day and more in days and hours.
func TestHopTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "", -time.Second: "", 300 * time.Millisecond: "1 s", time.Second: "1 s", 59 * time.Second: "59 s",
		time.Minute: "1 min", 61 * time.Second: "1 min 1 s", 90 * time.Second: "1 min 30 s", 59*time.Minute + 59*time.Second: "59 min 59 s",
		time.Hour: "1 h", time.Hour + 30*time.Second: "1 h", 3*time.Hour + 5*time.Minute: "3 h 5 min", 23*time.Hour + 59*time.Minute: "23 h 59 min",
		24 * time.Hour: "1 d", 52 * time.Hour: "2 d 4 h", 400 * 24 * time.Hour: "400 d",
	} {
		if got := hopTime(d); got != want {
			t.Errorf("hopTime(%s) = %q, want %q", d, got, want)
		}
	}
}
