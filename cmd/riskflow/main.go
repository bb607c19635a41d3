// Command riskflow is riskflow's one binary: dev (everything in one process), serve (roles
// scorer, archiver, api), migrate, produce, rules, backtest, demo, loadgen, bench, version.
// `riskflow help` lists the commands; `riskflow COMMAND --help` says what one does and takes.
//
// Exit codes: 0 ok (and help), 1 runtime error, 2 bad usage or configuration, 3 partial result
// (lookup printed one part of what it was asked and could not get the other).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// usageError is bad usage: exit code 2, with the command's usage line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// configError is bad configuration: exit code 2, without a usage line (the message names the key).
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func configf(format string, args ...any) error { return configError{fmt.Errorf(format, args...)} }

// partialError is a command that printed part of what it was asked and failed to get the rest
// (lookup: its live state or its history): exit code 3, so that a script tells a partial answer
// from a whole one (0) and from none (1). The message names the part and the setting to check.
type partialError struct{ err error }

func (e partialError) Error() string { return e.err.Error() }
func (e partialError) Unwrap() error { return e.err }

// helpRequested is -h/--help given to a command: its help goes to stdout and the exit code is 0.
type helpRequested struct {
	fs  *flag.FlagSet // the command's flags; nil for a command group
	cmd *command      // whose help; nil = the command that ran
}

func (helpRequested) Error() string { return "help requested" }
func (helpRequested) Unwrap() error { return flag.ErrHelp }

func main() {
	maskDefaultLogger(os.Stderr)
	ctx, stop := stopContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// maskDefaultLogger makes slog's default logger, and with it the standard library's log package,
// write to w through the same phone masking as every command's logger: a package that was given
// no logger falls back to slog.Default(), whose handler wrote lines as they came. Each command
// still logs through its own logger (log.level, log.format); this is for what escapes it.
func maskDefaultLogger(w io.Writer) {
	slog.SetDefault(newLogger(LogConfig{Level: "info", Format: "text"}, w))
}

// stopContext is cancelled by the first Ctrl-C or SIGTERM, which asks the command to stop cleanly;
// the signals' default action is then restored, so that a second one ends the process at once
// (a shutdown waiting on an unanswering server or its in-flight requests), as kubectl and gh do.
func stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-ctx.Done():
		}
		signal.Stop(sig) // before the cancel: once ctx is done, a second signal is not caught
		cancel()
	}()
	return ctx, cancel
}

// run executes one command line and returns the exit code. A command that succeeded while its
// output could not be written (a full disk: riskflow rules vars > /dev/full) fails, exit 1: its
// answer was lost. (A closed pipe, riskflow … | head -1, ends the process by SIGPIPE first, as
// for any Unix tool.)
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out := &outputWriter{w: stdout}
	code := runCommand(ctx, args, out, stderr)
	if err := out.failed(); err != nil && code == 0 {
		printError(stderr, "", fmt.Errorf("write output: %w", err))
		return 1
	}
	return code
}

// outputWriter is a command's standard output, remembering the first write that failed.
type outputWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (o *outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		o.mu.Lock()
		if o.err == nil {
			o.err = err
		}
		o.mu.Unlock()
	}
	return n, err
}

func (o *outputWriter) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// runCommand is run without the check of the output.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, rest, err := resolve(args)
	if err == nil {
		err = cmd.exec(ctx, rest, stdout, stderr)
	}
	if err == nil {
		return 0
	}
	var help helpRequested
	if errors.As(err, &help) {
		if help.cmd != nil {
			cmd = help.cmd
		}
		writeHelp(stdout, cmd, help.fs)
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		if len(args) == 0 {
			writeHelp(stderr, cmd, nil) // riskflow alone: what it can do
			return 2
		}
		printError(stderr, "", err)
		writeUsage(stderr, cmd)
		return 2
	}
	var ce configError
	if errors.As(err, &ce) {
		printError(stderr, "", clickhouseHint(err))
		return 2
	}
	if ctx.Err() != nil {
		// Told to stop (Ctrl-C, SIGTERM) mid-command: what failed is the interruption, whatever
		// the call that noticed it says ("i/o timeout" when a dial's deadline was the signal), and
		// without the hint to check the server (it may be fine: the user pressed Ctrl-C).
		printError(stderr, "interrupted: ", err)
		return 1
	}
	err = clickhouseHint(err)
	printError(stderr, "", err)
	if errors.As(err, new(partialError)) {
		return 3
	}
	return 1
}

// printError writes err as the command's last word, "riskflow: …", with every phone-like number
// masked: a message may quote what the user typed — a command, a flag, a value, a --set, a
// configuration value, an address — and the user may have typed a number there.
func printError(w io.Writer, prefix string, err error) {
	fmt.Fprintf(w, "riskflow: %s%s\n", prefix, schemas.MaskPhones(err.Error()))
}

// resolve finds the command args name — walking subcommands — and returns it with the arguments
// that follow its name. On an error the command returned is the deepest one found (the root at
// least), whose usage the error then prints.
func resolve(args []string) (*command, []string, error) {
	cmd := root()
	for {
		if len(cmd.subs) == 0 {
			return cmd, args, nil
		}
		if len(args) == 0 {
			if cmd.run != nil {
				return cmd, args, nil
			}
			return cmd, nil, usagef("%sa command is required", cmd.errPrefix())
		}
		name := args[0]
		if isHelpFlag(name) {
			if len(args) > 1 {
				// "riskflow --help serve", "riskflow rules -h lint": the help of the command named
				// after it, as riskflow help serve (it printed the list of commands).
				return root().sub("help"), append(strings.Fields(cmd.prefix()), args[1:]...), nil
			}
			return cmd, nil, helpRequested{}
		}
		if cmd.parent == nil && (name == "--version" || name == "-version") && len(args) == 1 {
			name = "version" // what a stranger types first: the same as riskflow version
		}
		if strings.HasPrefix(name, "-") && cmd.run == nil {
			return cmd, nil, usagef("%sflags go after the command (riskflow %sCOMMAND %s)", cmd.errPrefix(), cmd.prefix(), name)
		}
		sub := cmd.sub(name)
		if sub == nil {
			if cmd.run != nil {
				return cmd, args, nil // a command with both: arguments for it
			}
			return cmd, nil, usagef("%sunknown command %q%s (known: %s)", cmd.errPrefix(), name, didYouMean(name, cmd.subNames(), ""), strings.Join(cmd.subNames(), ", "))
		}
		cmd, args = sub, args[1:]
	}
}

// flagSpelling is a flag as the flag package's messages name it, "-name", where the help and the
// docs write "--name".
var flagSpelling = regexp.MustCompile(`(: |flag |for )-([A-Za-z][A-Za-z0-9_.-]*)`)

// flagError says a flag package error in the spelling of the help: "unknown flag: --colour" for
// "flag provided but not defined: -colour", "flag needs an argument: --set". An unknown flag close
// to one of fs's is followed by it: "unknown flag: --sampel (did you mean --sample?)".
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		renamed := map[string]string{} // a deprecated spelling → the flag's name
		fs.VisitAll(func(f *flag.Flag) {
			names = append(names, f.Name)
			if a, ok := f.Value.(*aliasFlag); ok {
				renamed[f.Name] = a.name
			}
		})
		hint := didYouMean(name, names, "--")
		for old, now := range renamed { // a near miss of a deprecated spelling is told the new one
			if hint == " (did you mean --"+old+"?)" {
				hint = " (did you mean --" + now + "?)"
			}
		}
		msg = "unknown flag: -" + name + hint
	}
	if m := unparsed.FindStringSubmatch(msg); m != nil {
		// "invalid value \"abc\" for flag -limit: parse error": say what the flag takes.
		if f := fs.Lookup(m[1]); f != nil {
			if want := wantOf(f.Value); want != "" {
				msg = strings.TrimSuffix(msg, "parse error") + want
			}
		}
	}
	// The flag package quotes the value it refused ("invalid value \"13812348000\" for flag
	// --since"): a number given by mistake is masked, as in every error riskflow prints.
	return errors.New(schemas.MaskPhones(flagSpelling.ReplaceAllString(msg, "${1}--${2}")))
}

// unparsed is the flag package's refusal of a value its type does not parse; the flag's name.
var unparsed = regexp.MustCompile(`^invalid (?:boolean )?value ".*" for (?:flag )?-([A-Za-z][A-Za-z0-9_.-]*): parse error$`)

// wantOf says what a flag of the flag package's own types takes ("" for another type, whose Set
// says it itself).
func wantOf(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case int, int64:
		return "want a whole number"
	case uint, uint64:
		return "want a whole number, 0 or more"
	case float64:
		return "want a number like 0.5 or 20"
	case bool:
		return "want true or false"
	case time.Duration:
		return "want a duration like 90s or 10m"
	}
	return ""
}

// didYouMean is " (did you mean PREFIX+candidate?)" for the candidate closest to a mistyped name
// — at most 2 edits away and fewer than the name's length, or the one candidate the name begins —
// and "" when none is close.
func didYouMean(name string, candidates []string, prefix string) string {
	best, bestD := "", 3
	var starts []string
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD && d < len(name) {
			best, bestD = c, d
		}
		if len(name) >= 2 && strings.HasPrefix(c, name) {
			starts = append(starts, c)
		}
	}
	if best == "" && len(starts) == 1 {
		best = starts[0]
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + prefix + best + "?)"
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// commonFlags are --config and --set, shared by every command that reads the configuration.
type commonFlags struct {
	config  string
	sets    multiFlag
	fs      *flag.FlagSet     // the command's, to tell --config from RISKFLOW_CONFIG
	origins map[string]string // key → where load found it set (a file line, env, --set)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (c *commonFlags) register(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.config, "config", os.Getenv("RISKFLOW_CONFIG"), "YAML configuration `FILE` (env RISKFLOW_CONFIG)")
	fs.Var(&c.sets, "set", "override one configuration key: `section.key=value` (repeatable)")
}

// load reads and validates the configuration; any problem is a configuration error (exit 2).
func (c *commonFlags) load(adjust func(*Config)) (Config, error) {
	cfg, origins, err := loadConfig(c.config, os.Environ(), c.sets)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) && c.config != "" && pe.Path == c.config && !c.flagGiven("config") {
			// A RISKFLOW_CONFIG left exported from another shell or project: say where the path
			// came from, since the command line shows none.
			err = fmt.Errorf("%w (the file RISKFLOW_CONFIG names: unset it or give --config FILE)", err)
		}
		return cfg, configError{err}
	}
	c.origins = origins
	if adjust != nil {
		adjust(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, configError{fmt.Errorf("invalid configuration:\n%w", withOrigins(err, origins))}
	}
	return cfg, nil
}

// keySet reports whether the configuration load found key ("log.level") set in the file, the
// environment or a --set: a command's own defaults (adjust) give way to it.
func (c *commonFlags) keySet(key string) bool {
	_, ok := c.origins[key]
	return ok
}

// quietLog is l at level warn unless log.level was set: the tools whose output is the point
// (demo, bench, backtest) log less by default, and as asked when asked.
func (c *commonFlags) quietLog(l LogConfig) LogConfig {
	if !c.keySet("log.level") {
		l.Level = "warn"
	}
	return l
}

// flagGiven reports whether the command line set flag name.
func (c *commonFlags) flagGiven(name string) bool {
	given := false
	if c.fs != nil {
		c.fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	}
	return given
}

// deprecatedFlag registers old, the former spelling of fs's flag name (registered before it), as
// an alias: it sets that flag and says on stderr, once, that the spelling is deprecated, so that a
// script written for it keeps working while it is told the new one. Its help says the same.
func deprecatedFlag(fs *flag.FlagSet, old, name string, stderr io.Writer) {
	target := fs.Lookup(name)
	if target == nil {
		panic("deprecatedFlag: no flag --" + name) // a programming error, found by any test of the command
	}
	fs.Var(&aliasFlag{target: target.Value, old: old, name: name, stderr: stderr}, old, "deprecated spelling of --"+name)
}

// aliasFlag is a deprecated spelling of a flag (deprecatedFlag).
type aliasFlag struct {
	target    flag.Value
	old, name string
	stderr    io.Writer
	warned    bool
}

func (a *aliasFlag) String() string {
	if a == nil || a.target == nil { // the flag package asks a zero value for its default
		return ""
	}
	return a.target.String()
}

func (a *aliasFlag) Set(v string) error {
	if !a.warned {
		a.warned = true
		fmt.Fprintf(a.stderr, "riskflow: --%s is deprecated: use --%s\n", a.old, a.name)
	}
	return a.target.Set(v)
}

// IsBoolFlag makes the alias of a true/false flag one too: --old alone sets it.
func (a *aliasFlag) IsBoolFlag() bool {
	b, ok := a.target.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// newFlagSet returns the flag set of the command name ("serve", "rules lint"). It prints nothing
// itself: parseFlags reports errors and help requests, and run prints them with the command's
// usage (help to stdout, errors to stderr).
func newFlagSet(name string, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlagsNoArgs parses the flags of a command that takes no arguments: a stray word — a value
// with spaces left unquoted, a value whose flag was forgotten — is a usage error naming it, not
// silently ignored.
func parseFlagsNoArgs(fs *flag.FlagSet, args []string) error {
	afterBool, err := parseFlagsAfter(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		if name := afterBool[0]; name != "" {
			// "bench --api http://…" (lookup's --api is an address; bench's a part to run or not):
			// the word is a value given to a flag that takes none.
			return usagef("%s: --%s is a true/false flag and takes no value (--%s=false turns it off), got %s after it", fs.Name(), name, name, schemas.Excerpt(fs.Arg(0), 40))
		}
		return usagef("%s: takes no arguments, got %s", fs.Name(), schemas.Excerpt(fs.Arg(0), 40))
	}
	return nil
}

// boolFlagBefore reports whether arg is a true/false flag of fs given without a value ("--once",
// not "--once=true"), and its name.
func boolFlagBefore(fs *flag.FlagSet, arg string) (string, bool) {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok || strings.Contains(name, "=") {
		return "", false
	}
	name = strings.TrimPrefix(name, "-")
	f := fs.Lookup(name)
	if f == nil {
		return "", false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return name, ok && b.IsBoolFlag()
}

// parseFlags parses args with flags allowed anywhere — before, between and after positional
// arguments (`rules lint pack.yaml --config c.yaml`); "--" ends the flags, and what follows is
// positional even if it starts with "-". The positional arguments are then fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := parseFlagsAfter(fs, args)
	return err
}

// parseFlagsAfter is parseFlags, and says for each positional argument the true/false flag given
// just before it ("" when none): "--once extra" may be a value meant for a flag that takes none.
func parseFlagsAfter(fs *flag.FlagSet, args []string) (afterBool []string, err error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequested{fs: fs}
			}
			return nil, usageError{flagError(fs, err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...) // "--": the rest is positional
			for range rest {
				afterBool = append(afterBool, "")
			}
			break
		}
		before := ""
		if consumed := len(args) - len(rest); consumed > 0 {
			name, ok := boolFlagBefore(fs, args[consumed-1])
			if ok && (strings.EqualFold(rest[0], "true") || strings.EqualFold(rest[0], "false")) {
				// "--sample false" sets --sample and leaves "false" as an argument: the opposite
				// of what was meant, or a stray word far from its flag.
				return nil, usagef("--%s %s: a true/false flag takes its value after =: --%s=%s", name, rest[0], name, strings.ToLower(rest[0]))
			}
			if ok {
				before = name
			}
		}
		pos = append(pos, rest[0])
		afterBool = append(afterBool, before)
		args = rest[1:]
	}
	// Make fs.Args() the positional arguments; flags already set keep their values.
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return nil, usageError{err}
	}
	return afterBool, nil
}
