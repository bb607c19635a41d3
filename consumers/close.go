package consumers

import (
	"io"
	"sync"
	"time"
)

// CloseWithin closes every c at once and returns when they are all closed or d has passed,
// whichever comes first; a close still running then finishes in the background (or at the
// process's exit). A stopping loop closes its reader and writers with it: against a broker that
// hangs, kafka-go's Writer.Close waits for the batches it still has in flight (WriteTimeout, 10 s,
// per attempt) and a group reader's leave for its coordinator, though nothing of that is needed —
// what was not acknowledged was not committed either, and is delivered again. A scorer stopped
// with its broker hung took 32 s to exit (its group's leave 10 s, its score writer's close 10 s,
// more), past what a stop is given (Kubernetes' grace period: 30 s unless set).
func CloseWithin(d time.Duration, cs ...io.Closer) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Close()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// StopCloseWait is how long a stopping loop waits for its reader and writers to close
// (CloseWithin): enough for a broker that answers, which takes milliseconds.
const StopCloseWait = 3 * time.Second
