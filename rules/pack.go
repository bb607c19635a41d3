package rules

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"gopkg.in/yaml.v3"

	"github.com/riskflow/riskflow/schemas"
)

// Mode says whether a rule's matches count.
type Mode string

// Rule modes. A shadow rule is evaluated and its matches are reported in Result.Hits, but it
// never contributes to Score, Tags or Detail: that is how a new rule is tried on live traffic.
const (
	Enforce Mode = "enforce"
	Shadow  Mode = "shadow"
	// Allow rules (level 0) decide the verdict: when one matches, the score is 0 and its tag is the
	// only tag, whatever else matched ("the list decides"). Other hits are still recorded.
	Allow Mode = "allow"
	// Tag rules (level 0) add their tag and reason to the verdict without raising its score: weak
	// signals worth showing (roaming, odd hours).
	Tag Mode = "tag"
)

// Rule is one compiled rule of a pack. Its exported fields are what the YAML said (Mode defaults
// to enforce, Reason to Description); they are informational and must not be modified.
type Rule struct {
	ID          string
	Description string
	Owner       string
	Tag         string
	Level       int
	Mode        Mode
	When        string
	Reason      string
	// Cost is CEL's worst-case cost estimate of When (see MaxEstimatedCost).
	Cost uint64

	prg cel.Program
	// fast is the condition compiled for the fast path (see Vars); nil when the rule runs on cel-go only.
	fast boolFn
	// uses are the variables the condition references (indexes into the Env's variables).
	uses []int
	// tracked: evaluated under cel.CostLimit because the cost depends on input sizes.
	tracked bool
	reason  template
	tagIdx  int // index into Pack.tags for enforce and tag rules, -1 for shadow and allow rules
}

// Pack is a compiled rule pack: every rule type-checked against the Env it was compiled with and
// turned into a program once. A Pack is immutable and safe for concurrent Eval calls.
type Pack struct {
	Name        string
	Description string
	// Version identifies the pack's content: the first 16 hex digits of the SHA-256 of the file.
	Version string
	Rules   []*Rule

	env  *Env
	tags []string // distinct enforce and tag-mode tags in order of first appearance
	uses []int    // variables the conditions reference, as indexes into env.vars, ascending
}

// Uses returns the variables the pack's conditions reference (not its reasons), as indexes into
// Env.Vars(), ascending. An Input may compute these ahead, together, when that is cheaper than one
// by one.
func (p *Pack) Uses() []int { return slices.Clone(p.uses) }

// Env returns the environment the pack was compiled against.
func (p *Pack) Env() *Env { return p.env }

// CompileError is one problem found while compiling a pack, at a position of the YAML text.
// Compile returns all of a pack's problems at once, joined with errors.Join.
type CompileError struct {
	File   string // the path given to CompileFile, "" for Compile
	Line   int    // 1-based line in the YAML text, 0 when unknown
	Column int    // 1-based column in the YAML text, 0 when unknown
	Rule   string // rule id, "#n" (1-based index) when the id is missing, "" for the pack itself
	Field  string // the YAML key at fault, e.g. "when"
	Msg    string
}

func (e *CompileError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "":
		b.WriteString(e.File)
	case e.Line > 0:
		b.WriteString("line ")
	}
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Rule != "" {
		b.WriteString("rule ")
		b.WriteString(e.Rule)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9_]+$`)
	packPattern = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

const maxIDLen = 64

// maxFieldProblems is how many problems of one reason are listed (CEL lists at most 100 of a
// condition's); the rest are counted. Each is located by walking the value from its start.
const maxFieldProblems = 100

// MaxPackBytes bounds a pack's YAML text. The default pack is 16 KB; parsing takes about 40 times
// a pack's size (a 15 MB file took 0.65 GB and 26 s to refuse), and a node reads its pack file at
// every start and reload: a file far larger, or a device or pipe in its place, took the process's
// memory until it was killed, at every restart.
const MaxPackBytes = 16 << 20

// ReadPackFile reads a pack file: a regular file of at most MaxPackBytes, refused unread otherwise.
// Errors name the path.
func ReadPackFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	tooLarge := func(n int64) error {
		return fmt.Errorf("%s holds %d bytes: a rule pack is at most %d MiB", path, n, MaxPackBytes>>20)
	}
	if fi.Size() > MaxPackBytes {
		return nil, tooLarge(fi.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPackBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxPackBytes { // grown since the stat
		return nil, tooLarge(int64(len(data)))
	}
	return data, nil
}

// CompileFile reads and compiles a pack file. Errors carry the path.
func CompileFile(path string, env *Env) (*Pack, error) {
	data, err := ReadPackFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return compile(data, env, path)
}

// LintFile is CompileFile for a person fixing the pack (`riskflow rules lint`): its error lists
// every problem, however long the list, where CompileFile's stops after a few KB (it is logged
// on every failed reload and answered to PUT /v1/rules) and counts the rest.
func LintFile(path string, env *Env) (*Pack, error) {
	data, err := ReadPackFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return compileWith(data, env, path, false)
}

// Lint is LintFile for a pack in hand (the console's draft): every problem, however many.
func Lint(data []byte, env *Env) (*Pack, error) {
	return compileWith(data, env, "", false)
}

// Compile parses a YAML rule pack and compiles every rule against env. It reports every problem of
// the pack in one error (errors.Join of *CompileError), each citing the rule id and the line and
// column in the YAML text; past a few KB of text, the rest are counted, not listed.
func Compile(data []byte, env *Env) (*Pack, error) {
	return compile(data, env, "")
}

func compile(data []byte, env *Env, file string) (*Pack, error) {
	return compileWith(data, env, file, true)
}

// compiler collects the problems of one pack.
type compiler struct {
	file  string
	all   bool // list every problem (LintFile), not the first few KB
	src   []byte
	lines []string
	env   *Env
	errs  []error
}

func (c *compiler) errAt(n *yaml.Node, rule, field, format string, args ...any) {
	// Errors are logged (a failed reload) and answered (PUT /v1/rules): a number in the pack is
	// masked in them like anywhere else.
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(schemas.MaskPhones(s), maxErrValue)
		}
	}
	e := &CompileError{File: c.file, Rule: errName(rule), Field: errName(field), Msg: escapeControls(fmt.Sprintf(format, args...), isMsgControl)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	c.errs = append(c.errs, e)
}

// Bounds of a compile error, which is logged on every failed reload and shown by `rules lint`: a
// pack with thousands of problems or a huge value must not make it many times the pack's size.
// Values (ids, keys, levels, expressions, CEL's messages) are clipped, and the problems listed stop
// once their text passes maxErrText, with a count of the rest.
const (
	maxErrName  = 128 // rule label and field of a CompileError
	maxErrValue = 256 // a value or message quoted in a CompileError's Msg
	maxErrText  = 4 << 10
)

// errName is a rule id or a key as a CompileError names it: numbers masked, clipped, and every
// control or bidirectional character escaped (\x1b, \n, \u202e). A pack's ids and keys are
// what its author typed, and the errors go to terminals (`riskflow rules lint`), logs and the
// console: an id "\e[2J…" cleared the terminal of whoever linted the pack.
func errName(s string) string {
	return escapeControls(clip(schemas.MaskPhones(s), maxErrName), func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) })
}

// escapeControls writes every rune of s that bad reports as its Go escape.
func escapeControls(s string, bad func(rune) bool) string {
	if !strings.ContainsFunc(s, bad) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if bad(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// clip shortens s to at most n bytes (and an ellipsis), at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// err joins the problems found: all of them, or the first ones and how many more there are when
// their text passes maxErrText.
func (c *compiler) err() error {
	size := 0
	for i, e := range c.errs {
		if size += len(e.Error()) + 1; !c.all && size > maxErrText && i+1 < len(c.errs) {
			more := &CompileError{File: c.file, Msg: fmt.Sprintf("%d more problems not shown", len(c.errs)-i-1)}
			return errors.Join(append(c.errs[:i+1:i+1], more)...)
		}
	}
	return errors.Join(c.errs...)
}

func compileWith(data []byte, env *Env, file string, bounded bool) (*Pack, error) {
	if env == nil {
		return nil, errors.New("rules: compile: env is nil")
	}
	c := &compiler{file: file, src: data, env: env, all: !bounded}
	where := file
	if where == "" {
		where = "pack"
	}
	if len(data) > MaxPackBytes {
		return nil, fmt.Errorf("rules: %s holds %d bytes: a rule pack is at most %d MiB", where, len(data), MaxPackBytes>>20)
	}
	if !utf8.Valid(data) && !utf16BOM(data) {
		c.errs = append(c.errs, notUTF8(data, file))
		return nil, c.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	// KnownFields has no effect on a yaml.Node target; unknown keys are checked by fields() below,
	// which can name the rule and the position.
	dec.KnownFields(true)
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("rules: %s: empty pack: no YAML document", where)
		}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			// A syntax error: cited like every other problem, at its line and in its rule.
			line, _ := strconv.Atoi(m[1])
			msg, rule := m[2], ""
			switch {
			case !strings.HasPrefix(msg, "did not find expected"):
				// A scanner error: its line is where the token at fault starts.
				rule = ruleAtLine(data, line)
			case strings.Contains(msg, "'-' indicator"), strings.Contains(msg, "<document start>"):
				// A parser error cites where the collection it was parsing starts, as a 0-based
				// line; for a list item out of line that is the list's start, not the rule at fault.
				line++
				msg += " (in the list or document that starts here: look below for a line indented differently)"
			default:
				// A flow collection or a mapping (a rule's): 0-based like the above; its rule is the one at fault.
				line++
				rule = ruleAtLine(data, line)
			}
			c.errs = append(c.errs, &CompileError{File: file, Line: line, Rule: errName(rule),
				Msg: "YAML: " + clip(schemas.MaskPhones(msg), maxErrValue)})
			return nil, c.err()
		}
		return nil, fmt.Errorf("rules: %s: %w", where, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("rules: %s: a pack is one YAML document; found more after line %d", where, root.Line)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		c.errAt(doc, "", "", "a pack must be a mapping with keys pack, description, rules")
		return nil, c.err()
	}
	// A comment is recorded as written too (the pack file, rule_versions, the console's diffs),
	// though nothing reads it: a number there is refused like one in a field — and so is one in
	// an anchor, an alias, a tag or a directive.
	c.comments(&root, "")
	c.directives()
	p := &Pack{env: env}
	sum := sha256.Sum256(data)
	p.Version = hex.EncodeToString(sum[:])[:16]

	top := c.fields(doc, "", "pack", "description", "rules")
	if n := top["pack"]; n == nil {
		c.errAt(doc, "", "pack", "is required (the pack's name)")
	} else if p.Name = c.str(n, "", "pack"); n.Kind == yaml.ScalarNode && p.Name == "" {
		// `pack:`, `pack: ~` and `pack: ""` name nothing either.
		c.errAt(n, "", "pack", "is required (the pack's name)")
	} else if p.Name != "" && !packPattern.MatchString(p.Name) {
		c.errAt(n, "", "pack", "%q is not a valid name: want [a-z0-9_-]+", p.Name)
	}
	if n := top["description"]; n != nil {
		p.Description = c.str(n, "", "description")
	}
	rulesNode := top["rules"]
	switch {
	case rulesNode == nil || (rulesNode.Kind == yaml.ScalarNode && rulesNode.Tag == "!!null"):
		c.errAt(doc, "", "rules", "empty pack: at least one rule is required")
	case rulesNode.Kind != yaml.SequenceNode:
		c.errAt(rulesNode, "", "rules", "must be a list of rules")
	case len(rulesNode.Content) == 0:
		c.errAt(rulesNode, "", "rules", "empty pack: at least one rule is required")
	case len(rulesNode.Content) > MaxRules:
		// Refused before compiling: a pack of a million rules would take minutes to compile.
		c.errAt(rulesNode, "", "rules", "%d rules: a pack holds at most %d (every rule, shadow ones too, runs on every check and may add a hit to its verdict)",
			len(rulesNode.Content), MaxRules)
	default:
		seen := make(map[string]int)
		tagIdx := make(map[string]int)
		for i, rn := range rulesNode.Content {
			r := c.rule(i, rn, seen)
			if r == nil {
				continue
			}
			r.tagIdx = -1
			if r.Mode == Enforce || r.Mode == Tag {
				j, ok := tagIdx[r.Tag]
				if !ok {
					j = len(p.tags)
					tagIdx[r.Tag] = j
					p.tags = append(p.tags, r.Tag)
				}
				r.tagIdx = j
			}
			p.Rules = append(p.Rules, r)
			p.uses = append(p.uses, r.uses...)
		}
		c.packCost(rulesNode, p.Rules)
		c.packVerdict(rulesNode, p.Rules)
	}
	slices.Sort(p.uses)
	p.uses = slices.Compact(p.uses)
	if len(c.errs) > 0 {
		return nil, c.err()
	}
	return p, nil
}

// packCost refuses a pack whose rules together may cost more than MaxPackCost: every check and
// every event evaluates every rule (shadow ones too), so a pack of thousands of affordable rules
// would make each check take milliseconds against callers' 50 ms deadline. The costliest rules
// are named, so that the pack can be trimmed where it counts.
func (c *compiler) packCost(at *yaml.Node, rs []*Rule) {
	total := uint64(0)
	for _, r := range rs {
		total += r.Cost
	}
	if total <= MaxPackCost {
		return
	}
	top := slices.Clone(rs)
	slices.SortStableFunc(top, func(a, b *Rule) int { return cmp.Compare(b.Cost, a.Cost) })
	var names []string
	for _, r := range top[:min(5, len(top))] {
		names = append(names, fmt.Sprintf("%s (%s)", r.ID, costString(r.Cost)))
	}
	c.errAt(at, "", "rules", "too expensive together: the %d rules' estimated worst-case cost adds up to %s, over the pack's limit of %d "+
		"(every rule, shadow ones too, runs on every check); the costliest: %s", len(rs), costString(total), MaxPackCost, strings.Join(names, ", "))
}

// Bounds of what a pack's verdicts carry. A verdict holds a hit for every matched rule, shadow ones
// too, each with its rendered reason, and goes to the caller, risk.scores, risk.decisions and
// ClickHouse: 20,000 shadow rules `true` (cost 0, under MaxPackCost) made every score record 2.9 MB,
// over the broker's message size, and every event was dead-lettered instead of scored.
const (
	// MaxRules is the most rules a pack holds.
	MaxRules = 4096
	// MaxVerdictBytes bounds the JSON of a verdict's hits, tags and detail when every rule
	// matches, reasons as long as they can be rendered (see MaxReasonBytes; a string variable
	// counts MaxStringSize bytes, as cost estimates assume). It leaves room for a decision's
	// other fields under schemas.MaxDecisionBytes, the most the archiver takes of one (a verdict
	// of 124 rules matching, 390 KB, was dead-lettered there), and a score record far under
	// Kafka's default message size. The default pack's 34 rules: 17,562 bytes.
	MaxVerdictBytes = schemas.MaxDecisionBytes - 16<<10
)

// JSON of a verdict's parts (schemas.RuleHit, a Detail entry, a Tags entry) without their strings.
const (
	hitJSON    = `{"rule":"","tag":"","score":900,"mode":"","reason":""},`
	detailJSON = `"":{"score":900,"reason":""},`
	tagJSON    = `"",`
)

// hitBytes is the most a hit of r takes in a verdict's JSON.
func (r *Rule) hitBytes(env *Env) int {
	return len(hitJSON) + len(r.ID) + len(r.Tag) + len(r.Mode) + r.reason.maxJSONLen(env)
}

// verdictBytes is the most the JSON of a verdict's hits, tags and detail takes when all of rs
// match: every hit, and for each tag that can show in the verdict (not a shadow rule's) its entry
// in tags and in detail with the longest reason of its rules.
func verdictBytes(rs []*Rule, env *Env) int {
	n := 0
	reason := make(map[string]int) // tag → its longest reason
	for _, r := range rs {
		n += r.hitBytes(env)
		if r.Mode == Shadow {
			continue
		}
		l, ok := reason[r.Tag]
		if !ok {
			n += len(detailJSON) + len(tagJSON) + 2*len(r.Tag)
		}
		if m := r.reason.maxJSONLen(env); !ok || m > l {
			reason[r.Tag] = m
		}
	}
	for _, l := range reason {
		n += l
	}
	return n
}

// packVerdict refuses a pack whose verdict, were every rule to match, would take more than
// MaxVerdictBytes, naming the rules whose hits weigh most.
func (c *compiler) packVerdict(at *yaml.Node, rs []*Rule) {
	total := verdictBytes(rs, c.env)
	if total <= MaxVerdictBytes {
		return
	}
	top := slices.Clone(rs)
	slices.SortStableFunc(top, func(a, b *Rule) int { return cmp.Compare(b.hitBytes(c.env), a.hitBytes(c.env)) })
	var names []string
	for _, r := range top[:min(5, len(top))] {
		names = append(names, fmt.Sprintf("%s (%d bytes)", r.ID, r.hitBytes(c.env)))
	}
	c.errAt(at, "", "rules", "too large together: were all %d rules to match, the verdict's hits, tags and detail would take %d bytes, over the pack's limit of %d "+
		"(every hit, shadow ones too, goes with the verdict to the caller, risk.scores and risk.decisions; a larger one is dead-lettered, not scored or recorded); "+
		"the largest hits (id, tag and longest reason): %s", len(rs), total, MaxVerdictBytes, strings.Join(names, ", "))
}

// utf16BOM says data starts with a UTF-16 byte order mark, which the YAML decoder reads.
func utf16BOM(data []byte) bool {
	return bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff})
}

// fieldKeyRE is a mapping key at the start of a line, "  when:" or "  - id:".
var fieldKeyRE = regexp.MustCompile(`^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:`)

// notUTF8 cites the first byte of data that is not UTF-8 at its line and column, in its rule and
// field: the YAML decoder's "invalid trailing UTF-8 octet" named neither, and a pack saved in GBK
// or Latin-1 by an editor left the author to search the file for it.
func notUTF8(data []byte, file string) *CompileError {
	line, col, b, field := firstNotUTF8(data)
	return &CompileError{File: file, Line: line, Column: col, Rule: errName(ruleAtLine(data, line)), Field: field, Msg: notUTF8Msg(b)}
}

func notUTF8Msg(b byte) string {
	return fmt.Sprintf("byte 0x%02X is not UTF-8: the file is UTF-8 text (an editor saved it in another encoding, GBK or Latin-1: save it as UTF-8)", b)
}

// firstNotUTF8 locates the first byte of data that is not UTF-8 (data must hold one): its 1-based
// line and column (in characters), the byte, and the mapping key its line starts with ("" if none
// before the byte).
func firstNotUTF8(data []byte) (line, col int, b byte, field string) {
	off := 0
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	end := bytes.IndexByte(data[start:], '\n')
	if end < 0 {
		end = len(data) - start
	}
	if m := fieldKeyRE.FindSubmatch(data[start : start+end]); m != nil && start+len(m[0]) <= off {
		field = string(m[1])
	}
	return bytes.Count(data[:start], []byte{'\n'}) + 1, utf8.RuneCount(data[start:off]) + 1, data[off], field
}

// yamlLineRE is a syntax error of gopkg.in/yaml.v3: "yaml: line N: what".
var yamlLineRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

var (
	rulesKeyRE = regexp.MustCompile(`^rules\s*:`)
	itemRE     = regexp.MustCompile(`^(\s*)-(\s|$)`)
	idKeyRE    = regexp.MustCompile(`(?:^|[\s{,-])id\s*:\s*["']?([A-Za-z0-9_]+)`)
)

// ruleAtLine names the rule whose text holds line (1-based) of a pack that does not parse, for
// its syntax error: the id of the item of the rules list that line is in, "#n" when the item has
// no id to read, "" for a line outside the list.
func ruleAtLine(src []byte, line int) string {
	lines := strings.Split(string(src), "\n")
	start := -1
	for i, l := range lines {
		if rulesKeyRE.MatchString(l) {
			start = i
			break
		}
	}
	if start < 0 || line-1 <= start || line > len(lines) {
		return ""
	}
	indent, n, item := -1, 0, -1
	for i := start + 1; i < line; i++ {
		m := itemRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if indent < 0 {
			indent = len(m[1])
		}
		if len(m[1]) == indent {
			n, item = n+1, i
		}
	}
	if item < 0 {
		return ""
	}
	for i := item; i < len(lines); i++ {
		if i > item {
			if m := itemRE.FindStringSubmatch(lines[i]); m != nil && len(m[1]) <= indent {
				break
			}
			if t := strings.TrimSpace(lines[i]); t != "" && !strings.HasPrefix(t, "#") && len(lines[i])-len(strings.TrimLeft(lines[i], " \t")) <= indent {
				break // back at the list's level or above: the list ended
			}
		}
		if m := idKeyRE.FindStringSubmatch(lines[i]); m != nil {
			return m[1]
		}
	}
	return fmt.Sprintf("#%d", n)
}

// fields returns a mapping's values by key and reports unknown and repeated keys.
func (c *compiler) fields(n *yaml.Node, rule string, known ...string) map[string]*yaml.Node {
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			c.errAt(k, rule, k.Value, "unknown key (known keys: %s)", strings.Join(known, ", "))
		case out[k.Value] != nil:
			c.errAt(k, rule, k.Value, "key repeated")
		default:
			out[k.Value] = v
		}
	}
	return out
}

// str returns a scalar's text, reporting a list or mapping where a string belongs.
func (c *compiler) str(n *yaml.Node, rule, field string) string {
	if n.Kind != yaml.ScalarNode {
		c.errAt(n, rule, field, "must be a string")
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	if schemas.ContainsPhone(n.Value) {
		c.errAt(n, rule, field, "%s", errPackPhone)
	}
	if strings.ContainsFunc(n.Value, isBadControl) {
		// Escapes ("\0", "\e") decode to bytes that reasons and descriptions would carry into
		// answers, risk.scores, ClickHouse and the terminals of `riskflow lookup`.
		c.errAt(n, rule, field, "contains a control character (a NUL, an escape, a bidirectional override …): only text, tabs and line breaks")
	}
	return n.Value
}

// isBadControl reports a control character other than a tab or a line break, or a bidirectional
// formatting character (U+202E …), which would show a reason or a description in the console and
// in `riskflow lookup` reordered, as other text than it is.
func isBadControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' || unicode.Is(unicode.Bidi_Control, r)
}

// isMsgControl reports what an error message shows escaped: isBadControl, and a carriage return
// too. A value may hold CRLF line breaks, but CEL quotes the text around a syntax error, and a bare
// \r there would send the terminal of `riskflow rules lint` back to the start of the line.
func isMsgControl(r rune) bool {
	return r == '\r' || isBadControl(r)
}

// comments reports every comment of n and its descendants that holds a phone number, at the
// node it belongs to; inside a rule, citing the rule (its id, or #i as everywhere else).
func (c *compiler) comments(n *yaml.Node, rule string) {
	c.commentsOf(n, rule)
	top := rule == "" && n.Kind == yaml.MappingNode
	for i, ch := range n.Content {
		if top && i%2 == 1 && n.Content[i-1].Value == "rules" && ch.Kind == yaml.SequenceNode {
			c.commentsOf(ch, rule)
			for j, rn := range ch.Content {
				c.comments(rn, ruleLabel(j, rn))
			}
			continue
		}
		c.comments(ch, rule)
	}
}

// commentsOf reports n's own comments (not its children's), at the comment's line when it can be
// found in the text (a foot comment may be far below its node), else at the node; and n's anchor
// (an alias names one) and tag, which are recorded as written as well.
func (c *compiler) commentsOf(n *yaml.Node, rule string) {
	if schemas.ContainsPhone(n.Anchor) {
		c.errAt(n, rule, "anchor", "%s", errPackPhone)
	}
	if schemas.ContainsPhone(n.Tag) {
		c.errAt(n, rule, "tag", "%s", errPackPhone)
	}
	for _, cm := range [...]string{n.HeadComment, n.LineComment, n.FootComment} {
		if cm == "" || !schemas.ContainsPhone(cm) {
			continue
		}
		at := n
		for l := range strings.SplitSeq(cm, "\n") {
			if l = strings.TrimSpace(l); l == "" || !schemas.ContainsPhone(l) {
				continue
			}
			if line, col, ok := c.commentLine(l, n.Line); ok {
				at = &yaml.Node{Line: line, Column: col}
			}
			break
		}
		c.errAt(at, rule, "comment", "%s", errPackPhone)
	}
}

// commentLine finds the line (1-based) and column holding comment text l nearest to line near, the
// line of the node the comment belongs to, looking outward from it: a comment is on its node's
// line, just above it or, a foot comment, below it. The same text may stand beside many nodes (a
// number noted beside several rules): each is cited at its own line. Reading the pack from its
// start for every comment took seconds per thousand of them and cited every copy at the first.
func (c *compiler) commentLine(l string, near int) (line, col int, ok bool) {
	lines := c.sourceLines()
	find := func(i int) bool {
		if j := strings.Index(lines[i], l); j >= 0 {
			line, col, ok = i+1, j+1, true
		}
		return ok
	}
	at := min(max(near-1, 0), len(lines)-1)
	for d := 0; at-d >= 0 || at+d < len(lines); d++ {
		if at-d >= 0 && find(at-d) {
			return
		}
		if d > 0 && at+d < len(lines) && find(at+d) {
			return
		}
	}
	return 0, 0, false
}

// directives reports a directive line (%TAG …) holding a phone number: no node keeps one, and
// the pack is recorded as written.
func (c *compiler) directives() {
	for i, l := range strings.Split(string(c.src), "\n") {
		if l == "---" || strings.HasPrefix(l, "--- ") {
			return // the directives end where the document starts
		}
		if strings.HasPrefix(l, "%") && schemas.ContainsPhone(l) {
			c.errAt(&yaml.Node{Line: i + 1, Column: 1}, "", "directive", "%s", errPackPhone)
		}
	}
}

// ruleLabel is how errors cite the i-th rule: its id, or #i+1 when it has none.
func ruleLabel(i int, n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if v := n.Content[j+1]; n.Content[j].Value == "id" && v.Kind == yaml.ScalarNode && v.Value != "" {
				return v.Value
			}
		}
	}
	return fmt.Sprintf("#%d", i+1)
}

// errPackPhone refuses a phone number anywhere in a pack: the pack is recorded as written (the
// rule_versions table, the console's diffs) and its ids and reasons reach metrics and risk_scores.
const errPackPhone = "holds a phone number, which riskflow never keeps in plaintext: match numbers with the allow/block lists (stored hashed) or a number block (phone_segment)"

var ruleKeys = []string{"id", "tag", "description", "owner", "level", "mode", "when", "reason"}

// rule compiles the i-th rule; it returns nil when the rule has errors (already reported).
func (c *compiler) rule(i int, n *yaml.Node, seen map[string]int) *Rule {
	before := len(c.errs)
	label := fmt.Sprintf("#%d", i+1)
	if n.Kind != yaml.MappingNode {
		c.errAt(n, label, "", "must be a mapping with keys %s", strings.Join(ruleKeys, ", "))
		return nil
	}
	// Name the rule first so that every later error cites it.
	var idNode *yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "id" {
			idNode = n.Content[j+1]
			break
		}
	}
	r := &Rule{}
	if idNode != nil && idNode.Kind == yaml.ScalarNode && idNode.Value != "" {
		r.ID = idNode.Value
		label = r.ID
	}
	f := c.fields(n, label, ruleKeys...)

	switch idn := f["id"]; {
	case idn == nil || (idn.Kind == yaml.ScalarNode && r.ID == ""):
		c.errAt(n, label, "id", "is required")
	case idn.Kind != yaml.ScalarNode:
		c.errAt(idn, label, "id", "must be a string")
	case len(r.ID) > maxIDLen || !idPattern.MatchString(r.ID):
		c.errAt(f["id"], label, "id", "%q is not valid: want [a-z0-9_]+, at most %d characters", r.ID, maxIDLen)
	case schemas.ContainsPhone(r.ID):
		c.errAt(f["id"], label, "id", "%s", errPackPhone)
	default:
		if line, dup := seen[r.ID]; dup {
			c.errAt(f["id"], label, "id", "duplicate id (first defined at line %d)", line)
		} else {
			seen[r.ID] = f["id"].Line
		}
	}

	if t := f["tag"]; t == nil {
		c.errAt(n, label, "tag", "is required")
	} else if r.Tag = c.str(t, label, "tag"); len(r.Tag) > maxIDLen || !idPattern.MatchString(r.Tag) {
		c.errAt(t, label, "tag", "%q is not valid: want [a-z0-9_]+, at most %d characters", r.Tag, maxIDLen)
	}
	if d := f["description"]; d != nil {
		r.Description = c.str(d, label, "description")
	}
	if o := f["owner"]; o != nil {
		r.Owner = c.str(o, label, "owner")
	}

	r.Mode = Enforce
	if m := f["mode"]; m != nil {
		switch s := c.str(m, label, "mode"); Mode(s) {
		case Enforce, Shadow, Allow, Tag:
			r.Mode = Mode(s)
		default:
			c.errAt(m, label, "mode", "%q is not a mode: want enforce, shadow, allow or tag", s)
		}
	}

	if l := f["level"]; l == nil {
		if r.Mode != Allow && r.Mode != Tag {
			c.errAt(n, label, "level", "is required: 300 (observe), 600 (step up) or 900 (block)")
		}
	} else {
		lv, err := strconv.Atoi(l.Value)
		switch {
		case r.Mode == Allow || r.Mode == Tag:
			if l.Kind != yaml.ScalarNode || err != nil || lv != schemas.ScorePass {
				c.errAt(l, label, "level", "%q: an %s rule has level 0 (or none)", l.Value, r.Mode)
			}
		case l.Kind != yaml.ScalarNode || err != nil || lv == schemas.ScorePass || !schemas.ValidScore(lv):
			c.errAt(l, label, "level", "%q is not a level: want 300 (observe), 600 (step up) or 900 (block)", l.Value)
		}
		r.Level = lv
	}

	if w := f["when"]; w == nil {
		c.errAt(n, label, "when", "is required: a CEL expression of type bool")
	} else if r.When = c.str(w, label, "when"); strings.TrimSpace(r.When) == "" {
		if w.Kind == yaml.ScalarNode {
			c.errAt(w, label, "when", "is empty: want a CEL expression of type bool")
		}
	} else {
		c.compileWhen(r, w, label)
	}

	if rn := f["reason"]; rn != nil {
		r.Reason = c.str(rn, label, "reason")
		tmpl, terrs := parseTemplate(r.Reason, c.env)
		for i, te := range terrs {
			if i == maxFieldProblems {
				c.errAtOffset(rn, label, "reason", te.offset, fmt.Sprintf("%d more problems in this reason not shown", len(terrs)-i))
				break
			}
			c.errAtOffset(rn, label, "reason", te.offset, te.msg)
		}
		r.reason = tmpl
	} else {
		// Without a reason the description is the reason, taken literally.
		r.Reason = r.Description
		r.reason = template{static: r.Description}
	}
	r.reason.static = clip(r.reason.static, MaxReasonBytes) // a long description, most likely

	if len(c.errs) > before {
		// Fields are checked in the order the compiler needs them (mode before level); the
		// rule's problems are listed as they appear in the text.
		slices.SortStableFunc(c.errs[before:], func(a, b error) int {
			pa, pb := position(a), position(b)
			if pa[0] != pb[0] {
				return pa[0] - pb[0]
			}
			return pa[1] - pb[1]
		})
		return nil
	}
	return r
}

// position is the line and column of a CompileError, 0 0 for another error.
func position(err error) [2]int {
	if e, ok := err.(*CompileError); ok {
		return [2]int{e.Line, e.Column}
	}
	return [2]int{}
}

// celOverload is cel-go's message for an operator given operands of the wrong types.
var celOverload = regexp.MustCompile(`^found no matching overload for '_([^_']+)_' applied to '\((.+)\)'$`)

// plainCELMessage says cel-go's type errors on operators in the rule writer's words: "'>=' cannot
// compare int with string", and how literals are written, instead of "_>=_" overloads.
func plainCELMessage(msg string) string {
	m := celOverload.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	op, types := m[1], strings.Split(m[2], ", ")
	if len(types) != 2 {
		return msg
	}
	hint := ""
	if (types[0] == "string") != (types[1] == "string") {
		hint = ` (numbers are written without quotes: 3, not "3"; strings in quotes: "idc")`
	}
	return fmt.Sprintf("'%s' cannot be applied to %s and %s%s", op, types[0], types[1], hint)
}

// undeclaredRE is cel-go's message for an unknown name it has no near variable to suggest for.
var undeclaredRE = regexp.MustCompile(`^undeclared reference to '([A-Za-z_][A-Za-z0-9_]*)'$`)

// unquotedString says whether name, undeclared, stands in when where a string is compared: beside a
// string variable or literal under == or !=, or in a list with a string literal (ip_type == idc,
// carrier in ["CM", CU]): a value the author forgot to quote, for which "undeclared reference to
// 'idc'" alone sent analysts looking for a variable named idc.
func (c *compiler) unquotedString(when, name string) bool {
	a, iss := c.env.cel.Parse(when)
	if iss.Err() != nil {
		return false
	}
	isName := func(e celast.Expr) bool { return e.Kind() == celast.IdentKind && e.AsIdent() == name }
	isString := func(e celast.Expr) bool {
		switch e.Kind() {
		case celast.LiteralKind:
			_, ok := e.AsLiteral().(types.String)
			return ok
		case celast.IdentKind:
			t, ok := c.env.Lookup(e.AsIdent())
			return ok && t == String
		}
		return false
	}
	found := false
	celast.PostOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.CallKind:
			call := e.AsCall()
			if fn := call.FunctionName(); (fn == operators.Equals || fn == operators.NotEquals) && len(call.Args()) == 2 {
				x, y := call.Args()[0], call.Args()[1]
				found = found || isName(x) && isString(y) || isName(y) && isString(x)
			}
		case celast.ListKind:
			elems := e.AsList().Elements()
			found = found || slices.ContainsFunc(elems, isName) && slices.ContainsFunc(elems, isString)
		}
	}))
	return found
}

// compileWhen type-checks, cost-checks and plans a rule's condition.
func (c *compiler) compileWhen(r *Rule, w *yaml.Node, label string) {
	ast, iss := c.env.cel.Compile(r.When)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			msg := plainCELMessage(strings.TrimSuffix(e.Message, " (in container '')"))
			if m := undeclaredRE.FindStringSubmatch(msg); m != nil && c.unquotedString(r.When, m[1]) {
				msg += fmt.Sprintf(` (a string is written in quotes: "%s")`, m[1])
			}
			line, col := e.Location.Line(), e.Location.Column()
			if line <= 0 {
				c.errAt(w, label, "when", "%s", msg)
				continue
			}
			c.errAtOffset(w, label, "when", runeOffset(r.When, line, col), msg)
		}
		return
	}
	if out := ast.OutputType(); !out.IsExactType(cel.BoolType) {
		c.errAt(w, label, "when", "must be a bool expression, but %q has type %s", r.When, out)
		return
	}
	if !schemas.ContainsPhone(r.When) && slices.ContainsFunc(joinedLiterals(ast.NativeRep()), schemas.ContainsPhone) {
		c.errAt(w, label, "when", "%s", errPackPhone) // once: the text itself is checked with the other fields
		return
	}
	if c.builtPatterns(ast.NativeRep(), w, label, r.When) {
		return
	}
	est, err := c.env.cel.EstimateCost(ast, sizeEstimator{env: c.env})
	if err != nil {
		c.errAt(w, label, "when", "cost estimate: %v", err)
		return
	}
	if est.Max > MaxEstimatedCost {
		c.errAt(w, label, "when", "too expensive: estimated worst-case cost %s exceeds %d (string variables assumed ≤ %d bytes)",
			costString(est.Max), MaxEstimatedCost, MaxStringSize)
		return
	}
	if c.zeroDivisors(ast.NativeRep(), w, label, r.When) {
		return
	}
	r.Cost = est.Max
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Estimate again as if strings were huge: if the bound moves, the cost depends on the input
	// and the runtime limit stays; if not, the static bound already holds for every input.
	if big, err := c.env.cel.EstimateCost(ast, sizeEstimator{env: c.env, max: 1 << 30}); err != nil || big.Max != est.Max {
		opts = append(opts, cel.CostLimit(RuntimeCostLimit))
		r.tracked = true
	}
	prg, err := c.env.cel.Program(ast, opts...)
	if err != nil {
		c.errAt(w, label, "when", "%v", err)
		return
	}
	r.prg = prg
	r.uses = references(ast.NativeRep(), c.env)
	if !r.tracked { // the fast path has no runtime cost limit: only for rules that need none
		r.fast = compileFast(ast.NativeRep(), c.env)
	}
}

// FastPath reports whether the rule runs on the fast path for Inputs that implement Vars.
func (r *Rule) FastPath() bool { return r.fast != nil }

// Uses returns the variables the rule's condition references (not its reason), as indexes into
// Env.Vars(), ascending.
func (r *Rule) Uses() []int { return slices.Clone(r.uses) }

func costString(v uint64) string {
	if v == ^uint64(0) {
		return "unbounded"
	}
	return strconv.FormatUint(v, 10)
}

// runeOffset turns a CEL location (1-based line, 0-based column in code points) into a byte
// offset of s.
func runeOffset(s string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return len(s)
		}
		off += i + 1
	}
	for ; col > 0 && off < len(s); col-- {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}

// errAtOffset reports a problem at byte offset off of a scalar's value. When the value can be
// traced back to the YAML text the error points at the exact line and column; otherwise it points
// at the scalar and says where in the value.
func (c *compiler) errAtOffset(n *yaml.Node, rule, field string, off int, msg string) {
	if n == nil {
		c.errAt(nil, rule, field, "%s", msg)
		return
	}
	if line, col, ok := c.locate(n, off); ok {
		c.errs = append(c.errs, &CompileError{File: c.file, Line: line, Column: col, Rule: errName(rule), Field: errName(field), Msg: escapeControls(clip(msg, maxErrValue), isMsgControl)})
		return
	}
	vl, vc := 1, 1
	for _, r := range n.Value[:min(off, len(n.Value))] {
		if r == '\n' {
			vl, vc = vl+1, 1
		} else {
			vc++
		}
	}
	c.errAt(n, rule, field, "%s (at %d:%d of the value)", msg, vl, vc)
}

// sourceLines is the pack's text split into lines (without their line breaks), split once.
func (c *compiler) sourceLines() []string {
	if c.lines == nil {
		c.lines = strings.Split(string(c.src), "\n")
		for i, l := range c.lines {
			c.lines[i] = strings.TrimSuffix(l, "\r")
		}
	}
	return c.lines
}

// locate maps byte offset off of scalar n's value to a 1-based line and column of the source by
// walking value and source together. It handles plain and quoted scalars without escapes and
// literal or folded blocks, and gives up (ok=false) when the two diverge.
func (c *compiler) locate(n *yaml.Node, off int) (line, col int, ok bool) {
	c.sourceLines()
	l, x := n.Line-1, n.Column-1
	block := false
	switch n.Style {
	case 0, yaml.FlowStyle:
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		x++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		block = true
		l++
		x = -1
	default:
		return 0, 0, false
	}
	if l < 0 || l >= len(c.lines) {
		return 0, 0, false
	}
	indent := 0
	if block {
		// Skip blank lines to the first content line; its indentation is the block's.
		for l < len(c.lines) && strings.TrimSpace(c.lines[l]) == "" {
			l++
		}
		if l >= len(c.lines) {
			return 0, 0, false
		}
		indent = len(c.lines[l]) - len(strings.TrimLeft(c.lines[l], " "))
		x = indent
	}
	v := n.Value
	if off > len(v) {
		off = len(v)
	}
	for i := 0; ; {
		src := c.lines[l]
		if i == off {
			if x > len(src) {
				return 0, 0, false
			}
			return l + 1, len([]rune(src[:x])) + 1, true
		}
		if i >= len(v) {
			return 0, 0, false
		}
		switch {
		case x < len(src) && src[x] == v[i]:
			i++
			x++
		case (v[i] == '\n' || v[i] == ' ') && strings.TrimSpace(src[min(x, len(src)):]) == "":
			// A line break of the source: a newline in literal blocks, a space when folded.
			i++
			l++
			if l >= len(c.lines) {
				return 0, 0, false
			}
			if block {
				x = min(indent, len(c.lines[l]))
			} else {
				x = len(c.lines[l]) - len(strings.TrimLeft(c.lines[l], " \t"))
			}
		default:
			return 0, 0, false
		}
	}
}

// zeroDivisors refuses an integer division or remainder by a literal 0 (phone_verifies_10m / 0):
// it fails whenever it is evaluated, so the part of the rule that holds it can never be true, its
// only trace an error counter. It reports whether it found one.
func (c *compiler) zeroDivisors(a *celast.AST, w *yaml.Node, label, when string) bool {
	found := false
	celast.PostOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		if fn := call.FunctionName(); fn != operators.Divide && fn != operators.Modulo || len(call.Args()) != 2 {
			return
		}
		d := call.Args()[1]
		if d.Kind() != celast.LiteralKind {
			return
		}
		switch v := d.AsLiteral().(type) {
		case types.Int:
			if v != 0 {
				return
			}
		case types.Uint:
			if v != 0 {
				return
			}
		default: // a double: x / 0.0 is ±Inf or NaN, not an error
			return
		}
		found = true
		what := "a division"
		if call.FunctionName() == operators.Modulo {
			what = "a remainder"
		}
		msg := what + " by zero: it fails whenever it is evaluated, so this part of the rule can never be true"
		loc := a.SourceInfo().GetStartLocation(d.ID())
		if loc.Line() <= 0 {
			c.errAt(w, label, "when", "%s", msg)
			return
		}
		c.errAtOffset(w, label, "when", runeOffset(when, loc.Line(), loc.Column()), msg)
	}))
	return found
}

// builtPatterns reports (and returns whether there is) a `matches` whose pattern is not a string
// literal. A regular expression costs what its compiled program holds per byte, which a literal
// shows (sizeEstimator prices it so) and a pattern built at run time does not: taken from a list
// (`[...].exists(p, s.matches(p))`), a condition or pieces joined, "^(.?){1000}$" — 12 characters,
// 4,004 instructions, milliseconds a match — was priced at 79, and compiled on every evaluation.
func (c *compiler) builtPatterns(a *celast.AST, w *yaml.Node, label, when string) bool {
	found := false
	celast.PostOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != overloads.Matches {
			return
		}
		call := e.AsCall()
		var pat celast.Expr
		switch {
		case call.IsMemberFunction() && len(call.Args()) == 1:
			pat = call.Args()[0]
		case !call.IsMemberFunction() && len(call.Args()) == 2:
			pat = call.Args()[1]
		default:
			return
		}
		if pat.Kind() == celast.LiteralKind {
			return
		}
		found = true
		msg := `matches: the pattern must be a string literal, whose cost can be known: one built at run time is compiled on every evaluation; write alternatives in one pattern, s.matches("^(170|171)")`
		loc := a.SourceInfo().GetStartLocation(pat.ID())
		if loc.Line() <= 0 {
			c.errAt(w, label, "when", "%s", msg)
			return
		}
		c.errAtOffset(w, label, "when", runeOffset(when, loc.Line(), loc.Column()), msg)
	}))
	return found
}

// joinedLiterals returns the strings an expression builds by joining string literals with '+'
// (`"139" + "1234" + "5678"`, or the literals side by side within `x + "139" + "12345678"`): the
// quotes between the pieces split the number in the text, not in the string compared.
func joinedLiterals(a *celast.AST) []string {
	var out []string
	seen := map[int64]bool{} // the inner '+' of a chain is read with the outer one
	var operands func(e celast.Expr, into []celast.Expr) []celast.Expr
	operands = func(e celast.Expr, into []celast.Expr) []celast.Expr {
		if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.Add && !e.AsCall().IsMemberFunction() {
			seen[e.ID()] = true
			for _, arg := range e.AsCall().Args() {
				into = operands(arg, into)
			}
			return into
		}
		return append(into, e)
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if seen[e.ID()] || e.Kind() != celast.CallKind || e.AsCall().FunctionName() != operators.Add {
			return
		}
		var run strings.Builder
		pieces := 0
		flush := func() {
			if pieces > 1 {
				out = append(out, run.String())
			}
			run.Reset()
			pieces = 0
		}
		for _, op := range operands(e, nil) {
			if op.Kind() == celast.LiteralKind {
				if s, ok := op.AsLiteral().(types.String); ok {
					run.WriteString(string(s))
					pieces++
					continue
				}
			}
			flush()
		}
		flush()
	}))
	return out
}

// references lists the declared variables a checked expression references.
func references(a *celast.AST, env *Env) []int {
	var out []int
	celast.PostOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.IdentKind {
			return
		}
		if i, ok := env.identIndex(a, e); ok {
			out = append(out, i)
		}
	}))
	return out
}

// identIndex returns the declared variable an identifier of a checked expression names, as an
// index into e.vars (the checker's resolved name when it has one).
func (env *Env) identIndex(a *celast.AST, e celast.Expr) (int, bool) {
	name := e.AsIdent()
	if r, ok := a.ReferenceMap()[e.ID()]; ok && r.Name != "" {
		name = r.Name
	}
	i, ok := env.index[name]
	return i, ok
}
