package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fixedLag int64

func (l fixedLag) Lag() int64 { return int64(l) }

func TestReplicaReadiness(t *testing.T) {
	obs := newObserver(prometheus.NewRegistry())
	for _, c := range []struct {
		lag   int64
		ready bool
		says  string
	}{
		{-1, false, "starting"},
		{5000, false, "5000 messages behind"},
		{1001, false, "behind"},
		{1000, true, ""},
		{0, true, ""},
	} {
		err := replicaReady(fixedLag(c.lag), 1000, obs)()
		if (err == nil) != c.ready {
			t.Errorf("lag %d: err %v, want ready=%v", c.lag, err, c.ready)
		}
		if err != nil && !strings.Contains(err.Error(), c.says) {
			t.Errorf("lag %d: %q does not say %q", c.lag, err, c.says)
		}
	}
}
