package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/riskflow/riskflow/schemas"
)

// labelBatch is how many labels of a --file are stored at once (one INSERT, then the check that
// their decisions and events are stored): the file is read in batches, so that memory stays the
// same whatever its size (read whole, 500,000 labels took 730 MB).
var labelBatch = 10_000

// maxLabelLine bounds one line of a JSON-lines file, and one label object read whole.
const maxLabelLine = 1 << 20

// readLabelFile reads the labels of r — one object, an array of objects, or JSON lines, the
// formats of schemas.DecodeLabelFile — and hands them to fn in batches of at most batch labels,
// each checked as schemas.DecodeLabels checks it (strict members, UTF-8, phone numbers refused).
// It holds one batch at a time: fn may not keep the slice (it is reused). An error names the line
// (and in an array the element, [i]); fn's error is returned as it is. A wrong label does not end
// the reading: every wrong label is named (the first maxBadLabelsNamed, the rest counted, as
// *labelFileErrors when there are several), and fn is given no label after the first wrong one;
// invalid JSON in an array ends it. It returns how many labels fn was given.
func readLabelFile(r io.Reader, batch int, fn func([]schemas.Label) error) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	// A byte order mark (a file a Windows editor saved) is skipped.
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	line := 1 // of the next byte of br
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			_, derr := schemas.DecodeLabels(nil) // "body is empty: …", as for the API
			return 0, derr
		}
		if err != nil {
			// Not an empty file: one that cannot be read (a directory, an I/O error).
			return 0, labelReadError{err}
		}
		if c == '\n' {
			line++
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			br.UnreadByte()
			break
		}
	}
	s := &labelStream{batch: batch, fn: fn, out: make([]schemas.Label, 0, min(batch, 1024))}
	n, err := s.read(br, r, line)
	return n, s.result(err)
}

// read reads the labels of br (then r), whose first byte that is not blank is on line.
func (s *labelStream) read(br *bufio.Reader, r io.Reader, line int) (int, error) {
	c, _ := br.Peek(1)
	switch c[0] {
	case '[':
		// The decoder reads what br holds, then the rest of r, through a line counter.
		held, _ := br.Peek(br.Buffered())
		lc := &lineCounter{r: io.MultiReader(bytes.NewReader(bytes.Clone(held)), r), lines: line - 1}
		return s.array(json.NewDecoder(lc), lc)
	case '{':
		first, err := readLabelLine(br, line)
		if err != nil {
			return 0, err
		}
		obj := bytes.TrimSpace(first)
		var raw []byte
		next, nextLine, err := nextLabelLine(br, line+1, &raw)
		if err != nil {
			return 0, err
		}
		if next != nil && len(obj) >= 2 && obj[len(obj)-1] == '}' {
			// A whole object on the first line, and more lines: JSON lines.
			if err := s.jsonLine(obj, line); err != nil {
				return s.n, err
			}
			return s.jsonLines(br, next, nextLine)
		}
		// One object, perhaps written over several lines (pretty-printed): read whole.
		rest, err := io.ReadAll(io.LimitReader(br, maxLabelLine))
		if err != nil {
			return 0, labelReadError{err}
		}
		// The lines as they were, their line breaks kept: glued together, a string or a number
		// cut by a line break read as one ({"event_id":"e-1⏎2"} as "e-12"), and trimmed, blanks
		// that are not JSON's (U+00A0) went unseen, where the file is not JSON.
		doc := first
		if next != nil {
			doc = append(append(append(doc, '\n'), raw...), rest...)
		}
		if len(doc) >= maxLabelLine {
			return 0, &schemas.FieldError{Field: fmt.Sprintf("line %d", line), Reason: "one label object longer than 1 MiB, or several objects written over several lines: write one label object per line (JSON lines) or an array"}
		}
		ls, err := schemas.DecodeLabels(doc)
		if err != nil {
			return 0, err
		}
		s.out = append(s.out, ls...)
		return s.flush()
	default:
		b, _ := io.ReadAll(io.LimitReader(br, 64))
		_, err := schemas.DecodeLabels(b) // names what is wrong with the text
		if err == nil {
			err = errors.New("expected a label object, an array of labels or JSON lines")
		}
		return 0, err
	}
}

// labelReadError is a label file that could not be read (not one that is wrong): a runtime
// error, not a usage error.
type labelReadError struct{ err error }

func (e labelReadError) Error() string { return e.err.Error() }
func (e labelReadError) Unwrap() error { return e.err }

// maxBadLabelsNamed is how many wrong labels of a file are named one by one.
const maxBadLabelsNamed = 20

// labelFileErrors are the wrong labels of a file: the first maxBadLabelsNamed, and how many.
type labelFileErrors struct {
	errs []error
	n    int
}

func (e *labelFileErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d wrong labels, none stored:", e.n)
	for _, err := range e.errs {
		b.WriteString("\n  " + err.Error())
	}
	if e.n > len(e.errs) {
		fmt.Fprintf(&b, "\n  and %d more", e.n-len(e.errs))
	}
	return b.String()
}

// labelStream collects the labels read into batches for fn.
type labelStream struct {
	batch int
	fn    func([]schemas.Label) error
	out   []schemas.Label
	n     int     // labels handed to fn
	bad   []error // the first maxBadLabelsNamed wrong labels
	nBad  int     // wrong labels
}

// wrong notes a wrong label (err names it) and lets the reading go on.
func (s *labelStream) wrong(err error) {
	s.nBad++
	if len(s.bad) < maxBadLabelsNamed {
		s.bad = append(s.bad, err)
	}
}

// result is the error of the reading: err (which ended it) after the wrong labels noted, if any.
func (s *labelStream) result(err error) error {
	var rerr labelReadError
	if s.nBad == 0 || errors.As(err, &rerr) {
		return err
	}
	if err != nil {
		s.wrong(err)
	}
	if s.nBad == 1 {
		return s.bad[0]
	}
	return &labelFileErrors{errs: s.bad, n: s.nBad}
}

func (s *labelStream) add(l schemas.Label) error {
	if s.nBad > 0 {
		return nil // nothing after a wrong label is handed on: the file is refused
	}
	s.out = append(s.out, l)
	if len(s.out) < s.batch {
		return nil
	}
	_, err := s.flush()
	return err
}

func (s *labelStream) flush() (int, error) {
	if len(s.out) == 0 || s.nBad > 0 {
		return s.n, nil
	}
	if err := s.fn(s.out); err != nil {
		return s.n, err
	}
	s.n += len(s.out)
	clear(s.out)
	s.out = s.out[:0]
	return s.n, nil
}

// jsonLine decodes one line of a JSON-lines file (line: its number), errors naming it.
func (s *labelStream) jsonLine(b []byte, line int) error {
	var ls []schemas.Label
	var err error
	switch {
	case b[0] != '{':
		err = &schemas.FieldError{Reason: "expected one label object per line (JSON lines), or one array of labels in the whole file"}
	default:
		if lg, ok, lerr := loadgenLabel(b); ok {
			if lerr != nil {
				err = lerr
				break
			}
			b = lg
		}
		ls, err = schemas.DecodeLabels(b)
	}
	if err != nil {
		s.wrong(atLine(err, fmt.Sprintf("line %d", line)))
		return nil
	}
	return s.add(ls[0])
}

// jsonLines reads the lines of a JSON-lines file from next (the line numbered line) on.
func (s *labelStream) jsonLines(br *bufio.Reader, next []byte, line int) (int, error) {
	for next != nil {
		if err := s.jsonLine(next, line); err != nil {
			return s.n, err
		}
		var err error
		if next, line, err = nextLabelLine(br, line+1, nil); err != nil {
			return s.n, err
		}
	}
	return s.flush()
}

// array reads an array of label objects one element at a time from dec, which reads through lc.
func (s *labelStream) array(dec *json.Decoder, lc *lineCounter) (int, error) {
	syntax := func(err error) error {
		var se *json.SyntaxError
		at := dec.InputOffset()
		if errors.As(err, &se) {
			at = se.Offset
		}
		reason := "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			reason = "invalid JSON: unexpected end of input (the array is not closed)"
		}
		// The decoder's offset may be before the blanks that precede the mistake.
		return &schemas.FieldError{Field: fmt.Sprintf("line %d", lc.lineOfText(at)), Reason: reason}
	}
	if _, err := dec.Token(); err != nil { // [
		return 0, syntax(err)
	}
	i := 0
	for ; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return s.n, syntax(err)
		}
		// The element's first line: the line where it ends, less the lines it spans.
		at := fmt.Sprintf("line %d: [%d]", lc.lineAt(dec.InputOffset())-bytes.Count(raw, []byte("\n")), i)
		if len(raw) == 0 || raw[0] != '{' {
			s.wrong(&schemas.FieldError{Field: at, Reason: "expected a label object"})
			continue
		}
		ls, err := schemas.DecodeLabels(raw)
		if err != nil {
			s.wrong(atLine(err, at))
			continue
		}
		if err := s.add(ls[0]); err != nil {
			return s.n, err
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return s.n, syntax(err)
	}
	if i == 0 {
		return 0, &schemas.FieldError{Reason: "the array holds no labels"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return s.n, &schemas.FieldError{Field: fmt.Sprintf("line %d", lc.lineAt(dec.InputOffset())), Reason: "invalid JSON: data after the labels"}
	}
	return s.flush()
}

// atLine prefixes err's field with where ("line 3", "line 7: [2]"): line 3: label: …,
// line 7: [2].label: ….
func atLine(err error, where string) error {
	fe, ok := schemas.AsFieldError(err)
	if !ok {
		return fmt.Errorf("%s: %w", where, err)
	}
	field := where
	switch {
	case fe.Field == "":
	case strings.HasSuffix(where, "]"):
		field += "." + fe.Field
	default:
		field += ": " + fe.Field
	}
	return &schemas.FieldError{Field: field, Reason: fe.Reason}
}

// readLabelLine reads one line (without its newline) of at most maxLabelLine bytes; nil at the end.
func readLabelLine(br *bufio.Reader, line int) ([]byte, error) {
	var out []byte
	for {
		b, err := br.ReadSlice('\n')
		if len(out)+len(b) > maxLabelLine {
			return nil, &schemas.FieldError{Field: fmt.Sprintf("line %d", line), Reason: "longer than 1 MiB: not one label (JSON lines hold one label object per line)"}
		}
		out = append(out, b...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(out, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(out) == 0 {
				return nil, nil
			}
			return out, nil
		default:
			return nil, labelReadError{err}
		}
	}
}

// nextLabelLine returns the next line that is not blank, trimmed, and its number (line: the number of
// the next line of br); nil at the end. raw, if not nil, gets the lines read as they were, each
// with a line break.
func nextLabelLine(br *bufio.Reader, line int, raw *[]byte) ([]byte, int, error) {
	for {
		b, err := readLabelLine(br, line)
		if err != nil || b == nil {
			return nil, line, err
		}
		if raw != nil {
			*raw = append(append(*raw, b...), '\n')
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			return b, line, nil
		}
		line++
	}
}

// lineCounter passes a reader's bytes on and tells the line of an offset in them, for offsets
// that only grow: it keeps only the bytes read and not yet counted (a read-ahead's worth).
type lineCounter struct {
	r     io.Reader
	kept  []byte // bytes from offset base on
	base  int64  // offset of kept[0]
	lines int    // newlines before base (and before the reader's first byte)
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.kept = append(c.kept, p[:n]...)
	return n, err
}

// lineAt returns the line (1-based) of offset off.
func (c *lineCounter) lineAt(off int64) int {
	k := int(min(max(off-c.base, 0), int64(len(c.kept))))
	c.lines += bytes.Count(c.kept[:k], []byte("\n"))
	c.kept = c.kept[k:]
	if cap(c.kept) > 1<<20 && len(c.kept) < cap(c.kept)/4 {
		c.kept = append([]byte(nil), c.kept...) // let go of what was counted
	}
	c.base += int64(k)
	return c.lines + 1
}

// lineOfText returns the line of the first byte at or after offset off that is not blank (the
// last line read when there is none).
func (c *lineCounter) lineOfText(off int64) int {
	line := c.lineAt(off)
	for _, b := range c.kept {
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return line
		}
		if b == '\n' {
			line++
		}
	}
	return c.lines + 1 + bytes.Count(bytes.TrimRight(c.kept, " \t\r\n"), []byte("\n"))
}

// loadgenLabel reads a line of `riskflow loadgen --labels` — {"event_id", "app_id", "label": the
// traffic's kind ("benign", "device_farm", …), "attack": true|false}, the ground truth that
// `backtest --labels` reads — as the label object DecodeLabels takes: attack true is fraud, false
// legit, and the kind is kept as the note ("loadgen: device_farm"). ok is false for a line
// without an "attack" member, which is read as a label object. The line's text is checked as a
// label object's is (UTF-8, one of each member); the label it makes is then checked whole by
// DecodeLabels (ids, phone numbers).
func loadgenLabel(b []byte) (label []byte, ok bool, err error) {
	if !bytes.Contains(b, []byte(`"attack"`)) {
		// A label object (every line of the usual file) is decoded once, by DecodeLabels; an
		// "attack" member spelt with escapes is refused there as an unknown field.
		return nil, false, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil, false, nil // not an object: DecodeLabels names what is wrong
	}
	attack, ok := m["attack"]
	if !ok {
		return nil, false, nil
	}
	if err := schemas.CheckJSONText(b); err != nil {
		return nil, true, err
	}
	var l struct {
		EventID string `json:"event_id"`
		AppID   string `json:"app_id"`
		Label   string `json:"label"`
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		v, err := m[name], error(nil)
		switch name {
		case "event_id":
			err = json.Unmarshal(v, &l.EventID)
		case "app_id":
			err = json.Unmarshal(v, &l.AppID)
		case "label":
			err = json.Unmarshal(v, &l.Label)
		case "attack":
		default:
			return nil, true, &schemas.FieldError{Field: schemas.ShowName(name, 40), Reason: "unknown field (a line with attack is loadgen's: event_id, app_id, label, attack)"}
		}
		if err != nil {
			return nil, true, &schemas.FieldError{Field: name, Reason: "want a string"}
		}
	}
	out := map[string]string{"app_id": l.AppID, "event_id": l.EventID, "label": schemas.LabelLegit}
	switch string(attack) {
	case "true":
		out["label"] = schemas.LabelFraud
	case "false":
	default:
		return nil, true, &schemas.FieldError{Field: "attack", Reason: "want true or false, got " + schemas.Excerpt(string(attack), 24)}
	}
	if l.Label != "" {
		out["note"] = "loadgen: " + l.Label
	}
	label, err = json.Marshal(out)
	return label, true, err
}
