package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
)

// ScorersOptions shape the scorer-processes row: the same events through 1, 2, 3 … scorer
// processes of one consumer group on the same broker.
type ScorersOptions struct {
	// Binary is the riskflow binary; each process runs `Binary serve --roles scorer Flags…` and
	// the run's --set flags (topics, group), which come last and win.
	Binary    string
	Flags     []string // e.g. the caller's --config and --set flags
	Env       []string // added to the processes' environment (e.g. the phone-hash key, kept off the command line)
	Events    int      // events per run (default 60,000)
	Processes []int    // scorer processes per run (default 1, 2, 3)
	Keep      bool     // keep each run's topics (deleted when the run ends)
}

func (o ScorersOptions) withDefaults() ScorersOptions {
	if o.Events <= 0 {
		o.Events = 60_000
	}
	if len(o.Processes) == 0 {
		o.Processes = []int{1, 2, 3}
	}
	return o
}

// ScorersRun is one run: n processes.
type ScorersRun struct {
	Processes int
	Took      time.Duration // first event produced → every event's offset committed by the group
	Produce   time.Duration // producing the events (the producer shares the machine)
	Rate      float64       // events/s end to end
	CPUPerEv  time.Duration // CPU time of all the scorer processes per event (0 where unknown)
}

// ScorersResult is the row.
type ScorersResult struct {
	Events int
	Cores  int
	Runs   []ScorersRun
}

// Report renders the result.
func (r ScorersResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Scorer processes: %d events through N scorer processes of one group on the same broker (%d cores shared with the broker and the producer)\n", r.Events, r.Cores)
	var one time.Duration
	for _, run := range r.Runs {
		line := fmt.Sprintf("    %d scorer(s)   %9.0f events/s  (%6.0f per core)   %s end to end, producing %s",
			run.Processes, run.Rate, run.Rate/float64(r.Cores), run.Took.Round(time.Millisecond), run.Produce.Round(time.Millisecond))
		if run.CPUPerEv > 0 {
			line += fmt.Sprintf("   scorer CPU %.1f µs/event", float64(run.CPUPerEv)/1e3)
			if run.Processes == 1 {
				one = run.CPUPerEv
			} else if one > 0 {
				// Each process applies every event (the full-state feed); scoring is divided.
				line += fmt.Sprintf(" (+%.1f µs per added scorer: its feed)", float64(run.CPUPerEv-one)/1e3/float64(run.Processes-1))
			}
		}
		fmt.Fprintln(w, line)
	}
}

// RunScorers produces the same kind of events through each number of scorer processes in turn,
// each run on fresh topics and a fresh group, and measures events/s from the first event produced
// until the group has committed every offset, with the scorers' CPU time per event.
func RunScorers(ctx context.Context, kc consumers.Config, o ScorersOptions, log *slog.Logger) (ScorersResult, error) {
	o = o.withDefaults()
	res := ScorersResult{Events: o.Events, Cores: runtime.NumCPU()}
	for _, n := range o.Processes {
		run, err := scorersRun(ctx, kc, o, n, log)
		if err != nil {
			return res, fmt.Errorf("%d scorer processes: %w", n, err)
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

func scorersRun(ctx context.Context, kc consumers.Config, o ScorersOptions, n int, log *slog.Logger) (ScorersRun, error) {
	run := ScorersRun{Processes: n}
	id := runID()
	events, scores, dlq, group := "bench."+id+".events", "bench."+id+".scores", "bench."+id+".dlq", "bench-scorers-"+id
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: events, Partitions: 4}, {Name: scores, Partitions: 4}, {Name: dlq, Partitions: 1}}, log); err != nil {
		return run, err
	}
	if !o.Keep { // registered first, so run last: after the scorer processes have stopped
		defer deleteTopics(context.WithoutCancel(ctx), kc, log, events, scores, dlq)
	}
	sets := []string{"serve", "--roles", "scorer",
		"--set", "kafka.brokers=" + strings.Join(kc.Brokers, ","),
		"--set", "kafka.events_topic=" + events, "--set", "kafka.scores_topic=" + scores, "--set", "kafka.dlq_topic=" + dlq,
		"--set", "kafka.scorer_group=" + group, "--set", "scoring.snapshot_dir=", "--set", "ops.listen=", "--set", "log.level=info"}
	procs := make([]*scorerProc, 0, n)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for i := 0; i < n; i++ {
		args := append(append([]string{o.Binary, sets[0], sets[1], sets[2]}, o.Flags...), sets[3:]...)
		p, err := startScorer(args, o.Env)
		if err != nil {
			return run, err
		}
		procs = append(procs, p)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range procs {
		for !p.ready() {
			if err := p.exited(); err != nil || time.Now().After(deadline) {
				return run, fmt.Errorf("a scorer did not start (%v):\n%s", err, p.tail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second) // let the group settle on its members before the stream starts

	cpu0 := make([]time.Duration, n)
	for i, p := range procs {
		cpu0[i] = p.cpu()
	}
	w := consumers.NewWriter(kc, events)
	defer w.Close()
	start := time.Now()
	base := start.Add(-10 * time.Minute) // event times in the recent past: inside every window, never ahead of now
	for i := 0; i < o.Events; i += 5000 {
		msgs := make([]kafka.Message, 0, 5000)
		for k := i; k < min(i+5000, o.Events); k++ {
			msgs = append(msgs, kafka.Message{Key: []byte(phoneOf(k)), Value: benchEvent(k, base.Add(time.Duration(k)*time.Millisecond*5))})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return run, fmt.Errorf("produce: %w", err)
		}
	}
	run.Produce = time.Since(start)
	for {
		lag, err := consumers.GroupLag(ctx, kc, group, events)
		total := int64(0)
		for _, l := range lag {
			total += l
		}
		if err == nil && len(lag) > 0 && total == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return run, fmt.Errorf("%d events not scored after 5 minutes (lag %d, %v)", o.Events, total, err)
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	run.Took = time.Since(start)
	run.Rate = float64(o.Events) / run.Took.Seconds()
	var cpu time.Duration
	for i, p := range procs {
		c := p.cpu()
		if c < 0 || cpu0[i] < 0 {
			cpu = -1
			break
		}
		cpu += c - cpu0[i]
	}
	if cpu > 0 {
		run.CPUPerEv = cpu / time.Duration(o.Events)
	}
	return run, nil
}

// scorerProc is one scorer process of a run.
type scorerProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
}

func startScorer(args, env []string) (*scorerProc, error) {
	p := &scorerProc{cmd: exec.Command(args[0], args[1:]...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start scorer %s: %w", args[0], err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *scorerProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *scorerProc) ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Contains(p.log.Bytes(), []byte("scorer running"))
}

// exited returns why the process ended, nil while it runs.
func (p *scorerProc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("exited: %v", p.err)
	default:
		return nil
	}
}

func (p *scorerProc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(p.log.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// stop ends the process with SIGTERM (SIGKILL after 15 s) and waits for it.
func (p *scorerProc) stop() {
	if p.exited() != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpu is the process's user and system CPU time so far (Linux /proc; -1 elsewhere).
func (p *scorerProc) cpu() time.Duration {
	f, err := os.Open("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return -1
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return -1
	}
	// Fields after the command name (in parentheses, which may hold spaces): utime and stime are
	// the 12th and 13th, in clock ticks (100 a second on Linux).
	_, rest, ok := strings.Cut(line, ") ")
	f2 := strings.Fields(rest)
	if !ok || len(f2) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f2[11], 10, 64)
	st, err2 := strconv.ParseInt(f2[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * (time.Second / 100)
}
