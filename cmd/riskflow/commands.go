package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// command is one row of the command table: its name and arguments, what it does (for help and
// usage errors) and the function that runs it. A command with subcommands (rules) has no run of
// its own. Each command lives in its own file as cmdX(ctx, args, stdout, stderr), builds its flag
// set with newFlagSet and parses it with parseFlags; adding one is a row here.
type command struct {
	name    string // as typed after its parent: "serve", "lint"
	args    string // the usage line after the command's name, e.g. "[flags] FILE.jsonl"
	summary string // one line for the parent's list
	doc     string // what it does, printed by --help
	// examples are command lines printed by --help under "examples:", each "riskflow …" with an
	// optional "  # comment"; a test runs each with --help appended, so their flags are real.
	examples []string
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	subs     []*command
	parent   *command
}

// root is the command table. It is built by a function, not a package variable, because the
// commands' functions are reached from it (a variable would be an initialization cycle).
func root() *command {
	r := &command{name: "riskflow", args: "COMMAND [flags] [arguments]",
		doc: "riskflow scores phone-number login verifications in real time: Kafka → scorers → ClickHouse, with an\n" +
			"HTTP API answering /v1/risk/check from the same feature state.",
		subs: []*command{
			{name: "dev", args: "[flags]", summary: "run every role in one process on an embedded broker, with a sample stream",
				doc: "Starts an in-process Kafka-protocol broker, the scorer, the API (and the archiver when\n" +
					"clickhouse.addr is set), publishes a sample stream and prints three verdicts. Without\n" +
					"api.keys the API accepts app key \"demo\" / secret \"demo-secret\". --once exits after the\n" +
					"sample's verdicts (or, with --sample=false, as soon as the node is ready).",
				examples: []string{
					"riskflow dev --once                 # the sample verdicts, then exit",
					"riskflow dev --listen 127.0.0.1:0   # a free port",
					"riskflow dev --sample=false --set api.keys=app1:secret1",
				},
				run: cmdDev},
			{name: "serve", args: "[flags]", summary: "run roles (scorer, archiver, api) against real Kafka and ClickHouse",
				doc: "Runs the roles named by --roles in this process. Every role checks, before anything starts,\n" +
					"the settings it needs (phone hash key, API keys, listen address, ClickHouse address) and\n" +
					"names each one missing. Every role loads scoring.rules (watched) and, with clickhouse.addr\n" +
					"set, records the packs it loads in rule_versions: a scorer too needs ClickHouse's password.",
				examples: []string{
					"riskflow serve --roles scorer,archiver,api --config riskflow.yaml",
					"riskflow serve --roles api --listen 0.0.0.0:8080",
					"riskflow serve --roles scorer --set ops.listen=0.0.0.0:9464",
				},
				run: cmdServe},
			{name: "migrate", args: "[flags]", summary: "apply the ClickHouse schema (idempotent)",
				doc: "Applies every migration of deploy/clickhouse/migrations not applied yet to clickhouse.database,\n" +
					"and again every applied one whose table or view is missing (a table dropped by hand comes back\n" +
					"with its columns and TTLs). A migration the server is too old for is skipped, and said so.",
				examples: []string{
					"riskflow migrate --set clickhouse.addr=127.0.0.1:19000",
				},
				run: cmdMigrate},
			{name: "produce", args: "[flags] FILE.jsonl", summary: "publish a JSONL file of verify events to Kafka",
				doc: "Publishes FILE.jsonl (- for stdin), one VerifyEvent per line, to kafka.events_topic. Invalid\n" +
					"lines are reported with their line number and skipped; the exit code is then 1. From a stream\n" +
					"(tail -f events.jsonl | riskflow produce -) each line read goes out without waiting for more.\n" +
					"What the broker does not take (a restart, a leader moving) is sent again, up to 8 times in a\n" +
					"row over about two minutes, each retry said on stderr; an event stored twice that way\n" +
					"is counted once downstream.",
				examples: []string{
					"riskflow produce events.jsonl",
					"riskflow produce --raw bad.jsonl    # to the dead-letter path as they are",
				},
				run: cmdProduce},
			rulesCommand(),
			{name: "backtest", args: "--rules CANDIDATE.yaml --from WHEN [flags]", summary: "replay stored events with a candidate rule pack and report the changes",
				doc: "Replays events stored in ClickHouse through the production scorer twice — with the current\n" +
					"pack and with CANDIDATE.yaml — and reports what the candidate changes (per rule, per score,\n" +
					"and precision/recall against the labels stored by riskflow label and POST /v1/admin/labels,\n" +
					"with a --labels file on top).",
				examples: []string{
					"riskflow backtest --rules my-pack/rules.yaml --from 24h",
					"riskflow backtest --rules my-pack/rules.yaml --from 2026-12-01 --to 2026-12-02 --labels labels.jsonl --json",
				},
				run: cmdBacktest},
			{name: "demo", args: "[flags]", summary: "play labelled synthetic traffic with attacks and print what was caught",
				doc: "Starts riskflow, plays --duration × --speedup of labelled traffic through it, probes\n" +
					"/v1/risk/check alongside and prints detection per scenario. --mode dev (the default) runs on\n" +
					"an embedded broker; --mode real uses the configured Kafka (kafka.brokers) and, when\n" +
					"clickhouse.addr is set, ClickHouse — and says which addresses it writes to; there it runs on\n" +
					"topics and groups of its own (*.demo-RUN), deleted when it ends unless --keep.",
				examples: []string{
					"riskflow demo --duration 30s --seed 14",
					"riskflow demo --mode real --keep",
				},
				run: cmdDemo},
			{name: "loadgen", args: "[flags]", summary: "write labelled synthetic traffic to a file, Kafka or the HTTP API",
				doc: "Generates a benign population mixed with labelled attack scenarios; --out chooses a JSONL\n" +
					"file, - (stdout), kafka, or an http(s):// base URL of riskflow (POST /v1/events, each app's\n" +
					"events with its key of api.keys: the apps are the keys' unless --apps names them, and\n" +
					"every app of --apps and --large-app needs a key).",
				examples: []string{
					"riskflow loadgen --rate 200 --duration 10m --out events.jsonl --labels labels.jsonl",
					"riskflow loadgen --out kafka --duration 1h --speedup 10",
					"riskflow loadgen --out http://127.0.0.1:8080 --set api.keys=demo:demo-secret",
				},
				run: cmdLoadgen},
			{name: "bench", args: "[flags]", summary: "measure API, pipeline, freshness and archiver against same-run baselines",
				doc: "Runs the load harness. Every figure is a ratio against a baseline measured in the same run.\n" +
					"The Kafka parts use kafka.brokers, on topics of their own (bench.RUN.*); the ClickHouse\n" +
					"parts (--archiver, --history) use clickhouse.addr, else deploy/local's 127.0.0.1:19000\n" +
					"when it answers, in a database of their own. Topics and databases are deleted at the end,\n" +
					"also of a run stopped by Ctrl-C, unless --keep. Every part is on by default: --NAME=false\n" +
					"leaves one out.",
				examples: []string{
					"riskflow bench --api=false --archiver=false --history=false   # no API and no ClickHouse parts",
				},
				run: cmdBench},
			{name: "lookup", args: "--phone N | --ip A | --device D [flags]", summary: "show the live state, attempts, scores and decisions of one phone, IP or device",
				doc: "Shows the live feature state of one phone, IP or device on a running API node (every window\n" +
					"and its value, the rules matching and within reach; POST /v1/admin/explain with the first of\n" +
					"api.admin_keys, or --admin) and, from ClickHouse, its recent attempts with their scores and\n" +
					"the decisions served — of one app with --app, stamped from --since up to --until, newest first,\n" +
					"--limit at a time (when the limit cuts a list, the last line gives the flags of the next page:\n" +
					"--since and --until as times, --offset). The phone is hashed with scoring.phone_hash_key, as\n" +
					"stored. Exit code 3:\n" +
					"one part was printed and the other, asked for, failed (--api none does not ask an API node;\n" +
					"without clickhouse.addr there is no history to ask).",
				examples: []string{
					"riskflow lookup --phone \"+86 138 1111 2222\" --since 7d",
					"riskflow lookup --ip 47.92.10.20 --api none --json",
					"riskflow lookup --device farm-1 --app app1 --limit 50",
				},
				run: cmdLookup},
			{name: "label", args: "--app ID (--decision ID | --event ID) --as fraud|legit [flags] | --file LABELS.json", summary: "mark decisions or events as fraud or legit (ClickHouse labels)",
				doc: "Stores labels in ClickHouse labels with who (--by, default the user) and when; riskflow backtest\n" +
					"uses them for precision and recall. --file takes an object or an array of\n" +
					"{app_id, decision_id|event_id, label, note}, as POST /v1/admin/labels does, or JSON lines; it\n" +
					"is checked whole first (a mistake stores nothing and names its line), then stored 10,000\n" +
					"labels at a time, so that a file of any size takes the same memory.",
				examples: []string{
					"riskflow label --app app1 --event ev-123 --as legit",
					"riskflow label --file labels.json",
				},
				run: cmdLabel},
			{name: "version", args: "", summary: "print the version, VCS revision and Go version of this binary",
				doc: "Prints the build information the Go toolchain embedded in this binary.",
				run: cmdVersion},
			{name: "help", args: "[COMMAND [SUBCOMMAND]]", summary: "say what a command does and what it takes",
				doc: "Prints the help of COMMAND, or the list of commands.",
				run: cmdHelp},
		},
	}
	r.link()
	return r
}

func (c *command) link() {
	for _, s := range c.subs {
		s.parent = c
		s.link()
	}
}

// path is the command as typed: "riskflow rules lint".
func (c *command) path() string {
	if c.parent == nil {
		return c.name
	}
	return c.parent.path() + " " + c.name
}

// prefix is the path without "riskflow", with a trailing space when not empty: "rules ".
func (c *command) prefix() string {
	p := strings.TrimPrefix(c.path(), "riskflow")
	p = strings.TrimPrefix(p, " ")
	if p != "" {
		p += " "
	}
	return p
}

// errPrefix starts an error message about the command: "rules: ", or "" for the root.
func (c *command) errPrefix() string {
	if c.parent == nil {
		return ""
	}
	return strings.TrimSpace(c.prefix()) + ": "
}

func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (c *command) subNames() []string {
	names := make([]string, len(c.subs))
	for i, s := range c.subs {
		names[i] = s.name
	}
	return names
}

// exec runs the command; a help request is tagged with the command whose help it is.
func (c *command) exec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if c.run == nil {
		return helpRequested{} // a group given no subcommand is handled by resolve; unreachable
	}
	err := c.run(ctx, args, stdout, stderr)
	var h helpRequested
	if errors.As(err, &h) && h.cmd == nil {
		h.cmd = c
		return h
	}
	return err
}

// usageLine is "usage: riskflow rules lint [flags] FILE".
func (c *command) usageLine() string {
	line := "usage: " + c.path()
	if c.args != "" {
		line += " " + c.args
	}
	return line
}

// writeUsage prints the short usage that follows a usage error: the command's usage line and
// where its help is.
func writeUsage(w io.Writer, c *command) {
	fmt.Fprintln(w, c.usageLine())
	if len(c.subs) > 0 {
		fmt.Fprintf(w, "commands: %s\n", strings.Join(c.subNames(), ", "))
	}
	fmt.Fprintf(w, "Run '%s --help' for details.\n", c.path())
}

// writeHelp prints what a command does, its flags (from fs, when it has any) and its subcommands.
func writeHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintln(w, c.usageLine())
	if c.doc != "" {
		fmt.Fprintf(w, "\n%s\n", c.doc)
	} else if c.summary != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(w, "\ncommands:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range c.subs {
			args := strings.TrimSpace(strings.TrimPrefix(s.args, "[flags]"))
			if len(args) > 12 || len(s.subs) > 0 {
				args = "" // long ones in the command's own help
			}
			fmt.Fprintf(tw, "  %s %s\t%s\n", s.name, args, s.summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for what a command does and takes.\n", c.path())
	}
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags (--name value or --name=value, anywhere on the line):")
			printFlags(w, fs)
		}
	}
	if c.parent == nil {
		fmt.Fprint(w, rootHelpTail)
	}
}

const rootHelpTail = `
Configuration: one YAML file (--config FILE or RISKFLOW_CONFIG); every key is also set by the
environment variable RISKFLOW_<SECTION>_<KEY> (or RISKFLOW_<SECTION>_<KEY>_FILE, naming a file that
holds the value) and by --set section.key=value. Unknown keys and unknown RISKFLOW_ variables are
errors.

Exit codes: 0 ok, 1 runtime error, 2 bad usage or configuration, 3 partial result (lookup).
`

// cmdHelp prints the help of the command its arguments name.
// printFlags lists fs's flags as they are typed, --name VALUE, with their meaning and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			// On the first line, before any list the usage goes on with.
			first, rest, _ := strings.Cut(usage, "\n")
			usage = strings.TrimSuffix(strings.TrimSpace(first), ":") + fmt.Sprintf(" (default %s)", f.DefValue)
			if rest != "" {
				usage += ":\n" + rest
			}
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, strings.ReplaceAll(usage, "\n", "\n      "))
	})
}

// cmdHelp prints the help of the command its arguments name.
func cmdHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("help", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return helpRequested{cmd: root()}
	}
	c := root()
	for _, name := range args {
		sub := c.sub(name)
		if sub == nil && len(c.subs) == 0 {
			return usagef("help: %s has no subcommands: riskflow help %s", c.path(), strings.TrimSpace(c.prefix()))
		}
		if sub == nil {
			return usagef("help: %s has no command %q%s (known: %s)", c.path(), name, didYouMean(name, c.subNames(), ""), strings.Join(c.subNames(), ", "))
		}
		c = sub
	}
	if c.run == nil || c.name == "help" {
		return helpRequested{cmd: c}
	}
	// The command's flags are declared where it parses them: ask it for its help.
	err := c.run(ctx, []string{"--help"}, stdout, stderr)
	var h helpRequested
	if errors.As(err, &h) {
		h.cmd = c
		return h
	}
	return helpRequested{cmd: c}
}

// cmdVersion prints the build information of this binary.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version: takes no arguments")
	}
	fmt.Fprint(stdout, versionText())
	return nil
}

// versionText is what `riskflow version` prints: the module version, the VCS revision, time and
// whether the tree was modified (when the binary was built from a checkout with VCS stamping),
// and the Go version.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	return formatVersion(bi, ok, stampedVersion, stampedRevision)
}

// stampedVersion and stampedRevision are set by a build that has no VCS checkout to stamp from
// (the Dockerfile copies the tree without .git): go build -ldflags "-X main.stampedVersion=v1.2.3
// -X main.stampedRevision=<commit>". The toolchain's own stamps win when there are any.
var stampedVersion, stampedRevision string

// formatVersion writes what riskflow version prints from the build information and the stamps.
func formatVersion(bi *debug.BuildInfo, ok bool, version, revision string) string {
	if !ok {
		return "riskflow: no build information in this binary\n"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "(devel)"
		if version != "" {
			v = version
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "riskflow %s\n", v)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(&b, "revision %s\n", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "commit time %s\n", t)
		}
	} else if revision != "" {
		fmt.Fprintf(&b, "revision %s\n", revision)
	} else {
		b.WriteString("revision unknown (built without VCS stamping; a build without .git can pass -ldflags \"-X main.stampedRevision=COMMIT -X main.stampedVersion=VERSION\")\n")
	}
	fmt.Fprintf(&b, "go %s %s/%s\n", strings.TrimPrefix(bi.GoVersion, "go"), settings["GOOS"], settings["GOARCH"])
	return b.String()
}
