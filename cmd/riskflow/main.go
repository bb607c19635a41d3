// Command riskflow is riskflow's one binary: dev (everything in one process), serve (roles
// scorer, archiver, api), migrate, produce, rules lint|test|vars.
//
// Exit codes: 0 ok, 1 runtime error, 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `riskflow — real-time login-risk scoring for carrier one-click login

usage:
  riskflow dev     [--listen ADDR] [--sample=true] [--once] [common flags]
  riskflow serve   --roles scorer,archiver,api [common flags]
  riskflow migrate [common flags]
  riskflow produce FILE.jsonl [common flags]
  riskflow rules lint FILE | rules test DIR | rules vars | rules report [--window 24h] [--app ID]
  riskflow backtest --rules CANDIDATE.yaml --from T [--to T] [--labels FILE] [--json]
  riskflow demo    [--duration 30s] [--rate N] [--mode auto|real|dev]
  riskflow loadgen [--rate N] [--duration D] [--out FILE.jsonl|-|kafka|http://HOST:PORT] [--labels FILE]
  riskflow bench   [--api] [--pipeline] [--freshness] [--phones N] [--ips N]

common flags:
  --config FILE      YAML configuration (every key also set by RISKFLOW_<SECTION>_<KEY>)
  --set key=value    override one key, e.g. --set kafka.brokers=127.0.0.1:9092 (repeatable)
`

// usageError is bad usage or configuration: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0 // -h/--help: the command's flag set has printed its flags; asking for help is not an error
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "riskflow: %v\n", err)
		fmt.Fprint(stderr, "\n"+usage)
		return 2
	}
	fmt.Fprintf(stderr, "riskflow: %v\n", err)
	return 1
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("a command is required")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return cmdDev(ctx, rest, stdout, stderr)
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "produce":
		return cmdProduce(ctx, rest, stdout, stderr)
	case "rules":
		return cmdRules(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "loadgen":
		return cmdLoadgen(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "backtest":
		return cmdBacktest(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}

// commonFlags are --config and --set, shared by every command that reads the configuration.
type commonFlags struct {
	config string
	sets   multiFlag
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", os.Getenv("RISKFLOW_CONFIG"), "YAML configuration file")
	fs.Var(&c.sets, "set", "override a key: section.key=value (repeatable)")
}

// load reads and validates the configuration; any problem is a usage error (exit 2).
func (c *commonFlags) load(adjust func(*Config)) (Config, error) {
	cfg, err := LoadConfig(c.config, os.Environ(), c.sets)
	if err != nil {
		return cfg, usageError{err}
	}
	if adjust != nil {
		adjust(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	return cfg, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}
