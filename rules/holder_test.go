package rules

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func levelPack(t testing.TB, env *Env, level int) *Pack {
	return mustCompile(t, env, fmt.Sprintf("pack: p%d\nrules:\n  - {id: r, tag: t, level: %d, when: token_seen}\n", level, level))
}

func TestHolderSwapUnderConcurrentReaders(t *testing.T) {
	env := testEnv(t)
	packs := []*Pack{levelPack(t, env, 300), levelPack(t, env, 600), levelPack(t, env, 900)}
	h := NewHolder(packs[0])
	if h.Load() != packs[0] {
		t.Fatal("Load does not return the initial pack")
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res Result
			in := mapInput{"token_seen": true}
			for ctx.Err() == nil {
				p := h.Load()
				if err := p.Eval(in, &res); err != nil {
					errs <- err
					return
				}
				// Every reader sees a whole pack: its score is that pack's only level.
				if want := p.Rules[0].Level; res.Score != want {
					errs <- fmt.Errorf("pack %s scored %d, want %d", p.Name, res.Score, want)
					return
				}
			}
		}()
	}
	for i := 1; i <= 300; i++ {
		next := packs[i%len(packs)]
		if old := h.Swap(next); old != packs[(i-1)%len(packs)] {
			t.Errorf("swap %d returned the wrong old pack", i)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if NewHolder(nil).Load() != nil {
		t.Error("an empty holder returned a pack")
	}
}
