package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline/loadgen"
	"github.com/riskflow/riskflow/schemas"
)

// readAll reads a labels file through readLabelFile in batches of batch, returning every label
// and the size of each batch.
func readAll(t *testing.T, doc string, batch int) ([]schemas.Label, []int, error) {
	t.Helper()
	var all []schemas.Label
	var sizes []int
	n, err := readLabelFile(strings.NewReader(doc), batch, func(b []schemas.Label) error {
		all = append(all, b...)
		sizes = append(sizes, len(b))
		return nil
	})
	if n != len(all) {
		t.Errorf("%q: readLabelFile says %d labels, gave %d", doc, n, len(all))
	}
	return all, sizes, err
}

// label --file's formats read as schemas.DecodeLabelFile reads them — one object (on one line or
// several), an array (on one line or several), JSON lines (a byte order mark, CRLF, blank lines) —
// in batches of at most the batch size.
func TestReadLabelFileFormats(t *testing.T) {
	obj := func(i int) string { return fmt.Sprintf(`{"app_id":"a","event_id":"e-%d","label":"fraud"}`, i) }
	var lines, array []string
	for i := range 7 {
		lines = append(lines, obj(i))
		array = append(array, obj(i))
	}
	for name, doc := range map[string]string{
		"JSON lines":        "\xef\xbb\xbf" + strings.Join(lines, "\r\n") + "\r\n\n",
		"JSON lines, blank": "\n\n" + strings.Join(lines, "\n\n"),
		"array":             "[" + strings.Join(array, ",") + "]",
		"array, lines":      "\n[\n  " + strings.Join(array, ",\n  ") + "\n]\n",
	} {
		ls, sizes, err := readAll(t, doc, 3)
		if err != nil || len(ls) != 7 || ls[6].EventID != "e-6" || fmt.Sprint(sizes) != "[3 3 1]" {
			t.Errorf("%s: %d labels in batches %v, %v", name, len(ls), sizes, err)
		}
		want, err := schemas.DecodeLabelFile([]byte(doc))
		if err != nil || fmt.Sprint(want) != fmt.Sprint(ls) {
			t.Errorf("%s: read %v, DecodeLabelFile %v %v", name, ls, want, err)
		}
	}
	for _, doc := range []string{obj(1), obj(1) + "\n", "{\n  \"app_id\": \"a\",\n  \"event_id\": \"e-1\",\n\n  \"label\": \"fraud\"\n}\n"} {
		if ls, _, err := readAll(t, doc, 3); err != nil || len(ls) != 1 || ls[0].EventID != "e-1" {
			t.Errorf("one object %q: %v %v", doc, ls, err)
		}
	}
}

// A mistake is named by its line — in an array also by its element — however far into the file:
// the file is no longer in memory to be searched.
func TestReadLabelFileErrorsNameTheLine(t *testing.T) {
	good := `{"app_id":"a","event_id":"e","label":"fraud"}`
	for doc, want := range map[string]string{
		good + "\n" + good + "\n\n" + `{"app_id":"a","event_id":"f","label":"spam"}`: `line 4: label: "spam" is not fraud or legit`,
		good + "\n[]": "line 2: expected one label object per line",
		good + "\n" + `{"app_id":"a","event_id":"13812348000","label":"fraud"}`:                 "line 2: event_id: looks like it contains a mobile phone number",
		good + "\n" + `{"app_id":"a","event_id":"e","label":"fraud","APP_ID":"b"}`:              "line 2: APP_ID: unknown field",
		good + "\n" + `{"app_id":"a","event_id":"e",`:                                           "line 2: invalid JSON",
		"[\n" + good + ",\n" + good + ",\n" + `{"app_id":"a","event_id":"e","label":"x"}` + "]": `line 4: [2].label: "x" is not fraud or legit`,
		"[\n" + good + ",\n\n  {\n\"app_id\":\"a\",\n\"label\":\"fraud\"}]":                     "line 4: [1].decision_id: is required",
		"[\n" + good + ",\n" + good + ",\n" + good + "\n":                                       "line 4: invalid JSON: unexpected end of input (the array is not closed)",
		"[\n" + good + ",\n" + good + ",\n  x" + good + "]":                                     "line 4: invalid JSON",
		"[\n" + good + ",\n  42]":                                                               "line 3: [1]: expected a label object",
		"[" + good + "]\n\n" + good:                                                             "line 3: invalid JSON: data after the labels",
		"[]":                                                                                    "the array holds no labels",
		"  \n ":                                                                                 "body is empty",
		"x":                                                                                     "invalid JSON",
	} {
		_, _, err := readAll(t, doc, 2)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
	// Where the batches go fails: that error, as it is.
	stop := errors.New("ClickHouse away")
	_, err := readLabelFile(strings.NewReader(good+"\n"+good+"\n"+good), 2, func([]schemas.Label) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("fn's error: %v", err)
	}
}

// label --file holds one batch of a file at a time: 200,000 labels (22 MB) took the process
// 150 MB more than one label when the file was read whole and decoded into one slice (500,000
// labels: 730 MB resident); read in batches, a few batches' worth. Each run is a process of its
// own (this test binary), measured by its peak resident size.
func TestLabelFileMemoryStaysFlat(t *testing.T) {
	if file := os.Getenv("LABELFILE_TEST_HELPER"); file != "" {
		// The child: label the file; ClickHouse is away, so it ends after reading it whole.
		os.Exit(run(context.Background(), []string{"label", "--file", file, "--set", "clickhouse.addr=" + os.Getenv("LABELFILE_TEST_CH")}, io.Discard, os.Stderr))
	}
	cleanEnv(t)
	peak := func(n int) int64 {
		file := filepath.Join(tempDir(t), fmt.Sprintf("labels-%d.jsonl", n))
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for i := range n {
			fmt.Fprintf(w, `{"app_id":"app1","decision_id":"api1-5f3a9c2e81d04b7a-%016x","label":"fraud","note":"bulk"}`+"\n", i)
		}
		w.Flush()
		f.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^TestLabelFileMemoryStaysFlat$")
		cmd.Env = append(os.Environ(), "LABELFILE_TEST_HELPER="+file, "LABELFILE_TEST_CH="+testaddr.Free(t))
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "clickhouse.addr") {
			t.Fatalf("%d labels: exit %d (%v), want 1 once ClickHouse is found away:\n%s", n, code, err, out)
		}
		return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
	}
	one, many := peak(1), peak(200_000)
	t.Logf("peak resident size: %d MiB labelling 1, %d MiB labelling 200,000", one>>20, many>>20)
	if many-one > 48<<20 {
		t.Errorf("labelling 200,000 labels took %d MiB more than labelling one: the file is held whole", (many-one)>>20)
	}
}

// A label file that cannot be read is a runtime error naming why (exit 1), not a file that is
// "empty" and a usage error (exit 2): `riskflow label --file DIR` said "body is empty: expected a
// label object or an array of labels".
func TestLabelFileThatCannotBeRead(t *testing.T) {
	_, err := readLabelFile(iotest.ErrReader(errors.New("input/output error")), 10, func([]schemas.Label) error { return nil })
	var rerr labelReadError
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "input/output error") {
		t.Errorf("a reader failing at once: %v; want the read error", err)
	}
	r := io.MultiReader(strings.NewReader(`{"app_id":"a","event_id":"e1","label":"fraud"}`+"\n"), iotest.ErrReader(errors.New("input/output error")))
	if _, err := readLabelFile(r, 10, func([]schemas.Label) error { return nil }); !errors.As(err, &rerr) {
		t.Errorf("a reader failing after a line: %v; want the read error", err)
	}
	dir := tempDir(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"label", "--file", dir, "--set", "clickhouse.addr=127.0.0.1:1"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "is a directory") || strings.Contains(errb.String(), "empty") {
		t.Errorf("label --file DIR: exit %d, %s; want exit 1 saying it is a directory", code, errb.String())
	}
}

// --note beside --file is a usage error, as --app or --as are: it was ignored, and the file's
// labels were stored without the note the analyst typed.
func TestLabelFileRefusesANoteForAllOfIt(t *testing.T) {
	file := filepath.Join(tempDir(t), "labels.jsonl")
	if err := os.WriteFile(file, []byte(`{"app_id":"a","event_id":"e1","label":"fraud"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"label", "--file", file, "--note", "modem pool", "--set", "clickhouse.addr=127.0.0.1:1"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--note") {
		t.Errorf("label --file F --note N: exit %d, %s; want a usage error naming --note", code, errb.String())
	}
}

// label --file told to stop (Ctrl-C) while its input has nothing to read — standard input or a
// pipe a writer holds open — stops at once, storing nothing: it waited for the end of the input.
func TestLabelFileStopsWhileItsInputWaits(t *testing.T) {
	cleanEnv(t)
	fifo := filepath.Join(tempDir(t), "labels.pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipe: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for label to open it
		if err != nil {
			cancel()
			return
		}
		writer <- w
		w.WriteString(`{"app_id":"a","event_id":"e1","label":"fraud"}` + "\n")
		cancel() // the Ctrl-C, with the pipe open and nothing more in it
	}()
	defer func() {
		select {
		case w := <-writer:
			w.Close()
		default:
		}
	}()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"label", "--file", fifo, "--set", "clickhouse.addr=127.0.0.1:1"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "riskflow: interrupted: --file ") || !strings.Contains(errb.String(), "nothing stored") {
		t.Errorf("exit %d, stderr %s; want 1, interrupted, nothing stored", code, errb.String())
	}
}

// Every wrong label of a file is named, not the first alone (a file of 500,000 labels with three
// typos took three runs to correct): each by its line, the first 20, then how many more; nothing
// after the first wrong label is handed on, and the good labels before it are not a result.
func TestReadLabelFileNamesEveryWrongLabel(t *testing.T) {
	good := func(i int) string { return fmt.Sprintf(`{"app_id":"a","event_id":"e-%d","label":"fraud"}`, i) }
	lines := []string{
		good(1),
		`{"app_id":"a","event_id":"e-2","label":"frad"}`,
		`{"app_id":"a","event_id":"e-3","label":"legit","note":"called 138 0013 8000"}`,
		good(4),
		`{"app_id":"a","event_id":"e-5","lable":"legit"}`,
		good(6),
	}
	ls, _, err := readAll(t, strings.Join(lines, "\n"), 1)
	want := "3 wrong labels, none stored:\n" +
		`  line 2: label: "frad" is not fraud or legit` + "\n" +
		"  line 3: note: looks like it contains a mobile phone number"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "\n  line 5: lable: unknown field") {
		t.Errorf("JSON lines: %v, want\n%s\n  line 5: lable: unknown field …", err, want)
	}
	if strings.Contains(fmt.Sprint(err), "13800138000") || strings.Contains(fmt.Sprint(err), "0013 8000") {
		t.Errorf("the number is in the error: %v", err)
	}
	if len(ls) != 1 {
		t.Errorf("labels handed on: %v, want the one before the first wrong label only", ls)
	}
	// An array: each wrong element by its line and index.
	arr := "[\n" + good(1) + ",\n" + `{"app_id":"a","event_id":"e-2","label":"x"}` + ",\n42,\n" + good(4) + "\n]"
	if _, _, err := readAll(t, arr, 10); err == nil || err.Error() != "2 wrong labels, none stored:\n"+
		`  line 3: [1].label: "x" is not fraud or legit`+"\n  line 4: [2]: expected a label object" {
		t.Errorf("array: %v", err)
	}
	// Then invalid JSON, which ends the reading: named after the wrong labels before it.
	if _, _, err := readAll(t, "[\n"+`{"app_id":"a","event_id":"e-2","label":"x"}`+",\n  x]", 10); err == nil ||
		!strings.HasPrefix(err.Error(), "2 wrong labels, none stored:\n"+`  line 2: [0].label: "x" is not fraud or legit`+"\n  line 3: invalid JSON") {
		t.Errorf("array with invalid JSON: %v", err)
	}
	// Many: the first 20 by line, the rest counted.
	var many []string
	for i := range 50 {
		many = append(many, fmt.Sprintf(`{"app_id":"a","event_id":"e-%d","label":"maybe"}`, i))
	}
	_, _, err = readAll(t, strings.Join(many, "\n"), 10)
	if err == nil || !strings.HasPrefix(err.Error(), "50 wrong labels, none stored:\n  line 1: label:") ||
		!strings.Contains(err.Error(), "\n  line 20: label:") || strings.Contains(err.Error(), "line 21:") || !strings.HasSuffix(err.Error(), "\n  and 30 more") {
		t.Errorf("50 wrong labels: %v", err)
	}
}

// Who runs the CLI is recorded in plaintext (labels.labeled_by "cli:<user>", rule_versions.loaded_by
// of a rollback): an account named by a phone number — a login name some organisations give — is
// recorded as "unknown", as label --by refuses one. It was recorded as it was.
func TestRecordedUserIsNoPhoneNumber(t *testing.T) {
	as := func(name string, err error) func() (*user.User, error) {
		return func() (*user.User, error) { return &user.User{Username: name}, err }
	}
	cases := []struct {
		current func() (*user.User, error)
		env     string
		want    string
	}{
		{as("zhang.san", nil), "", "zhang.san"},
		{as("13800139990", nil), "", "unknown"},
		{as("+86 138 0013 9990", nil), "ops", "unknown"},
		{as("", errors.New("no passwd entry")), "13800139990", "unknown"},
		{as("", errors.New("no passwd entry")), "ops", "ops"},
		{as("", errors.New("no passwd entry")), "", "unknown"},
	}
	for _, c := range cases {
		if got := recordedUser(c.current, c.env); got != c.want {
			u, _ := c.current()
			t.Errorf("user %q, $USER %q: recorded as %q, want %q", u.Username, c.env, got, c.want)
		}
	}
}

// One label object over several lines is read with its line breaks: the lines were glued
// together, so that an id cut by a line break (not JSON: a string holds no line break) was read
// as one, "e-1⏎2" as "e-12", where DecodeLabelFile and the API refuse the file (found by
// FuzzReadLabelFile).
func TestLabelObjectOverLinesKeepsItsLineBreaks(t *testing.T) {
	for _, doc := range []string{
		"{\"app_id\":\"a\",\"event_id\":\"e-1\n2\",\"label\":\"fraud\"}",
		"{\"app_id\":\"a\",\n\"event_id\":\"e-1\n\n  2\",\"label\":\"fraud\"}\n",
		"{\"app_id\":\"a\",\"event_id\":\"e\",\"\nlabel\":\"fraud\"}",
	} {
		if ls, _, err := readAll(t, doc, 2); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("%q: read %v, %v; want invalid JSON", doc, ls, err)
		}
	}
	if ls, _, err := readAll(t, "{\n\"app_id\":\"a\",\n\n  \"event_id\":\n\"e-1\",\"label\":\"fraud\"\n}\n", 2); err != nil || len(ls) != 1 || ls[0].EventID != "e-1" {
		t.Errorf("pretty-printed: %v, %v", ls, err)
	}
}

// One label object over several lines is read with its lines as they were: the second was
// trimmed of Unicode blanks, and a blank line of them dropped, so that a U+00A0 where JSON takes
// no blank was read, where DecodeLabelFile and the API refuse the file (found by a mutation harness
// over FuzzReadLabelFile's seeds).
func TestLabelObjectOverLinesKeepsItsBlanks(t *testing.T) {
	for _, doc := range []string{
		"{\n \u00a0 \"app_id\": \"a\",\n  \"event_id\": \"e-1\",\n  \"label\": \"fraud\"\n}\n",
		"{\n\u00a0\n\"app_id\":\"a\",\"event_id\":\"e-1\",\"label\":\"fraud\"}",
		"{\n\"app_id\":\"a\",\"event_id\":\"e-1\",\"label\":\"fraud\"}\u0085",
	} {
		if _, werr := schemas.DecodeLabelFile([]byte(doc)); werr == nil {
			t.Fatalf("%q: DecodeLabelFile takes it", doc)
		}
		if ls, _, err := readAll(t, doc, 2); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("%q: read %v, %v; want invalid JSON", doc, ls, err)
		}
	}
}

// The ground truth `riskflow loadgen --labels` writes (loadgen.LabelLine per line) is stored as it
// is, as `backtest --labels` reads it: an attack as fraud, the rest legit, the traffic's kind kept
// as the note. Such a line is checked as strictly as a label object: another member, an attack
// that is not a bool or an id with a phone number in it is named by its line.
func TestReadLabelFileTakesLoadgenLabels(t *testing.T) {
	var doc strings.Builder
	for _, l := range []loadgen.LabelLine{
		{EventID: "lg-1", AppID: "shop-cn", Label: "device_farm", Attack: true},
		{EventID: "lg-2", AppID: "news-cn", Label: "benign"},
	} {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		doc.Write(append(b, '\n'))
	}
	doc.WriteString(`{"app_id":"a","event_id":"e-3","label":"legit"}` + "\n") // a label object beside them
	ls, _, err := readAll(t, doc.String(), 10)
	want := []schemas.Label{
		{AppID: "shop-cn", EventID: "lg-1", Label: schemas.LabelFraud, Note: "loadgen: device_farm"},
		{AppID: "news-cn", EventID: "lg-2", Label: schemas.LabelLegit, Note: "loadgen: benign"},
		{AppID: "a", EventID: "e-3", Label: schemas.LabelLegit},
	}
	if err != nil || !slices.Equal(ls, want) {
		t.Fatalf("loadgen labels read as %+v, %v; want %+v", ls, err, want)
	}

	_, _, err = readAll(t, strings.Join([]string{
		`{"event_id":"e1","app_id":"a","label":"x","attack":"yes"}`,
		`{"event_id":"e2","app_id":"a","label":"x","attack":true,"13800138000":1}`,
		`{"event_id":"13800138000","app_id":"a","attack":true}`,
		`{"event_id":"e4","app_id":"a","attack":true,"attack":false}`,
	}, "\n"), 10)
	msg := fmt.Sprint(err)
	for _, want := range []string{"4 wrong labels", "line 1: attack: want true or false", "line 2: ", "unknown field", "line 3: event_id: looks like it contains a mobile phone number", "line 4: attack"} {
		if !strings.Contains(msg, want) {
			t.Errorf("wrong loadgen lines: %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "13800138000") {
		t.Errorf("the error shows the phone number: %q", msg)
	}
}
