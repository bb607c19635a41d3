package rules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// waitFor receives from ch for at most a generous bound, so a broken Watch fails instead of
// hanging; nothing is asserted about how long it takes.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestWatchReloadsValidAndKeepsRunningOnInvalid(t *testing.T) {
	env := testEnv(t)
	path := filepath.Join(t.TempDir(), "pack.yaml")
	write := func(level any) {
		t.Helper()
		src := fmt.Sprintf("pack: p\nrules:\n  - {id: r, tag: t, level: %v, when: token_seen}\n", level)
		// Write to a temporary file and rename, as deploy tools do, so a poll never reads half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(300)

	h := NewHolder(nil)
	loaded := make(chan *Pack, 16)
	failed := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, path, env, 5*time.Millisecond,
			func(p *Pack) { h.Swap(p); loaded <- p },
			func(err error) { failed <- err })
	}()
	defer func() { cancel(); <-done }()

	first := waitFor(t, loaded, "the initial load")
	if first.Rules[0].Level != 300 || h.Load() != first {
		t.Fatalf("initial pack level %d", first.Rules[0].Level)
	}

	write(600)
	second := waitFor(t, loaded, "the reload of a valid change")
	if second.Rules[0].Level != 600 || second.Version == first.Version || h.Load() != second {
		t.Fatalf("reloaded pack level %d version %s (was %s)", second.Rules[0].Level, second.Version, first.Version)
	}

	write(650) // not a level
	err := waitFor(t, failed, "the error for an invalid change")
	if !strings.Contains(err.Error(), path+":3:28:") || !strings.Contains(err.Error(), "rule r: level") {
		t.Errorf("error %q does not cite the file, line and rule", err)
	}
	if h.Load() != second {
		t.Error("an invalid file replaced the running pack")
	}
	select {
	case p := <-loaded:
		t.Fatalf("onLoad called for a rejected file (level %d)", p.Rules[0].Level)
	default:
	}

	write(900) // fixed again
	third := waitFor(t, loaded, "the reload after a fix")
	if third.Rules[0].Level != 900 || h.Load() != third {
		t.Fatalf("fixed pack level %d", third.Rules[0].Level)
	}

	// A vanished file is reported once and the pack stays.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, failed, "the error for a missing file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error = %v", err)
	}
	if h.Load() != third {
		t.Error("a missing file replaced the running pack")
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	errs := make(chan error, 4)
	path, env := filepath.Join(t.TempDir(), "none.yaml"), testEnv(t)
	go func() {
		defer close(done)
		Watch(ctx, path, env, time.Millisecond, nil, func(err error) { errs <- err })
	}()
	waitFor(t, errs, "the missing-file error")
	cancel()
	waitFor(t, done, "Watch to return")
}
