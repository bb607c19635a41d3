package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/pipeline/chsink/chbacktest"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/backtest"
)

// cmdLabel marks decisions or events as fraud or legit in ClickHouse `labels`, with who and when:
//
//	riskflow label --app APP --decision ID --as fraud [--note TEXT]
//	riskflow label --app APP --event ID --as legit
//	riskflow label --file labels.json   (one label object or an array, as POST /v1/admin/labels takes, or JSON lines)
func cmdLabel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("label", stderr)
	var cf commonFlags
	cf.register(fs)
	app := fs.String("app", "", "app_id of the decision or event")
	decision := fs.String("decision", "", "decision id (the id /v1/risk/check answered)")
	event := fs.String("event", "", "event id")
	as := fs.String("as", "", "fraud or legit")
	note := fs.String("note", "", "free text kept with the label")
	file := fs.String("file", "", "labels as JSON (an object or an array of {app_id, decision_id|event_id, label, note}, or JSON lines, as FORMAT JSONEachRow writes them, or as loadgen --labels writes them: attack true is fraud, false legit); - for stdin")
	by := fs.String("by", "", "who labels (default: the user name)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("label: takes no arguments, got %s (quote a note with spaces: --note \"modem pool\")", schemas.Excerpt(fs.Arg(0), 40))
	}
	// Who labels is stored as is (labeled_by): checked like an id, so no phone number gets in.
	if err := schemas.CheckID("by", *by, schemas.MaxAppIDLen); err != nil {
		return usagef("label: --by: %s", err.(*schemas.FieldError).Reason)
	}
	var labels []schemas.Label
	switch {
	case *file != "" && (*app != "" || *decision != "" || *event != "" || *as != "" || *note != ""):
		// --note too: it was ignored, and a file's labels were stored without the note given.
		return usagef("label: --file or --app/--decision/--event/--as/--note, not both (a label of the file has its own note)")
	case *file != "":
	case *decision == "" && *event == "":
		return usagef("label: --decision or --event is required (or --file): the label marks a decision or an event")
	case *decision != "" && *event != "":
		return usagef("label: --decision and --event are both set: a label marks one of them")
	default:
		l := schemas.Label{AppID: *app, DecisionID: *decision, EventID: *event, Label: *as, Note: *note}
		if err := l.Validate(); err != nil {
			fe, _ := schemas.AsFieldError(err)
			return usagef("label: --%s: %s", flagOf(fe.Field), fe.Reason)
		}
		labels = []schemas.Label{l}
	}
	// A file is read twice, a batch at a time: first to check every label — a mistake anywhere
	// stores nothing, as when it was read whole — then to store them. Standard input is kept in a
	// temporary file for the second reading.
	var src labelSource
	if *file != "" {
		// Opened and checked by a goroutine of their own, so that a Ctrl-C stops the command while
		// standard input (or a pipe) has nothing to read; nothing is stored before the check ends.
		type checked struct {
			src     labelSource
			n       int
			openErr error
			err     error
		}
		done := make(chan checked, 1)
		go func() {
			src, err := openLabelSource(*file)
			if err != nil {
				done <- checked{openErr: err}
				return
			}
			n, err := readLabelFile(src.r, labelBatch, func([]schemas.Label) error { return nil })
			done <- checked{src: src, n: n, err: err}
		}()
		var c checked
		select {
		case c = <-done:
		case <-ctx.Done():
			return fmt.Errorf("--file %s: stopped while reading it, nothing stored: %w", schemas.MaskPhones(*file), ctx.Err())
		}
		if c.openErr != nil { // the path is the caller's: a number in it is masked
			return usageError{errors.New("--file: " + schemas.MaskPhones(c.openErr.Error()))}
		}
		src = c.src
		defer src.close()
		n, err := c.n, c.err
		var rerr labelReadError
		switch {
		case errors.As(err, &rerr):
			return fmt.Errorf("--file %s: %w", schemas.MaskPhones(*file), err)
		case err != nil:
			return usageError{fmt.Errorf("--file %s: %w", schemas.MaskPhones(*file), err)}
		}
		src.n = n
	}
	who := *by
	if who == "" {
		who = userName()
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	// Named with the setting to check: the driver's text says only what failed.
	where := fmt.Sprintf("ClickHouse %s, database %s (clickhouse.addr, clickhouse.database)", cfg.ClickHouse.Addr, cfg.ClickHouse.Database)
	// The schema is applied only to a database that exists and lacks a table (one older than the
	// labels table): a database of another name, clickhouse.database mistyped, was created with
	// every table, and the labels stored there, out of every backtest's sight, exit 0.
	migrated := false
	write := func(batch []schemas.Label) error {
		err := st.WriteLabels(ctx, batch)
		if chsink.MissingDatabase(err) {
			return fmt.Errorf("the database does not exist (riskflow migrate creates it; is clickhouse.database mistyped?): %w", err)
		}
		if err != nil && chsink.SchemaBehind(err) && !migrated {
			migrated = true
			if _, merr := st.Migrate(ctx); merr != nil {
				return fmt.Errorf("migrate: %w", merr)
			}
			err = st.WriteLabels(ctx, batch)
		}
		return err
	}
	stored, total := 0, max(len(labels), src.n)
	// The ids not stored are counted by label over the whole file (an id labelled in two batches,
	// a correction further down, is one id named once, and two labels), in memory that does not
	// grow with the file: the first maxUnknownShown ids are named, the rest only counted.
	var unknown []schemas.Label // the first maxUnknownShown labels of distinct ids not stored
	nUnknown := 0               // labels of ids not stored
	nNamed := 0                 // of them, labels of an id in unknown
	var checkErr error
	store := func(batch []schemas.Label) error {
		now := time.Now().UTC()
		for i := range batch {
			batch[i].LabeledBy, batch[i].LabeledAt = "cli:"+who, now
		}
		if err := write(batch); err != nil {
			if stored > 0 {
				return fmt.Errorf("label: %s: %w (%d of the %d labels were stored before; storing them again is harmless: the latest label wins)", where, err, stored, total)
			}
			return fmt.Errorf("label: %s: %w", where, err)
		}
		stored += len(batch)
		for _, l := range batch {
			kind, id := l.Target()
			fmt.Fprintf(stdout, "labelled %s %s of %s as %s (by %s)\n", kind, id, l.AppID, l.Label, l.LabeledBy)
		}
		// A label of an id that is not stored never counts: say so (the label is kept — the
		// archiver may only be behind).
		if checkErr != nil {
			return nil
		}
		u, err := st.UnknownTargets(ctx, batch)
		if err != nil {
			checkErr = err
			return nil
		}
		notStored := make(map[labelTarget]bool, len(u))
		for _, l := range u {
			notStored[targetOf(l)] = true
		}
		for _, l := range batch {
			t := targetOf(l)
			if !notStored[t] {
				continue
			}
			nUnknown++
			named := slices.ContainsFunc(unknown, func(n schemas.Label) bool { return targetOf(n) == t })
			if !named && len(unknown) < maxUnknownShown {
				unknown, named = append(unknown, l), true
			}
			if named {
				nNamed++
			}
		}
		return nil
	}
	if src.r != nil {
		if err := src.rewind(); err != nil {
			return fmt.Errorf("label: --file %s: read it again to store it: %w", schemas.MaskPhones(*file), err)
		}
		n, err := readLabelFile(src.r, labelBatch, store)
		if err != nil {
			return err // a store error; the file read well the first time
		}
		if n != src.n {
			return fmt.Errorf("label: --file %s: %d labels the first reading, %d the second: the file changed while it was read (%d labels stored)", schemas.MaskPhones(*file), src.n, n, stored)
		}
	} else if err := store(labels); err != nil {
		return err
	}
	if checkErr != nil {
		fmt.Fprintf(stderr, "warning: could not check that the labelled ids are stored: %v\n", checkErr)
		return nil
	}
	for _, l := range unknown {
		kind, id := l.Target()
		table := "risk_decisions, nor an event carrying its id in verify_events"
		if kind == schemas.LabelTargetEvent {
			table = "verify_events"
		}
		fmt.Fprintf(stderr, "warning: no %s %s of app %s in %s: a mistyped id or app never counts in a backtest (if it was just made, the archiver may be behind)\n",
			kind, id, l.AppID, table)
	}
	if nUnknown > nNamed {
		// A bulk file of ids not archived yet: the count, not a line each.
		fmt.Fprintf(stderr, "warning: and %d more labels of ids not stored (%d of the %d labels): they never count in a backtest unless the archiver stores them later\n",
			nUnknown-nNamed, nUnknown, total)
	}
	return nil
}

// labelSource is the input of label --file, read twice: a file, or standard input kept in a
// temporary file.
type labelSource struct {
	r     io.ReadSeeker
	n     int // labels the first reading found
	close func()
}

// openLabelSource opens path (- for standard input, copied to a temporary file as it is read).
func openLabelSource(path string) (labelSource, error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return labelSource{}, err
		}
		return labelSource{r: f, close: func() { f.Close() }}, nil
	}
	tmp, err := os.CreateTemp("", "riskflow-labels-*.json")
	if err != nil {
		return labelSource{}, fmt.Errorf("keep standard input for a second reading: %w", err)
	}
	os.Remove(tmp.Name()) // unlinked: gone when closed, whatever happens
	return labelSource{r: &teeSeeker{in: os.Stdin, f: tmp}, close: func() { tmp.Close() }}, nil
}

func (s labelSource) rewind() error {
	_, err := s.r.Seek(0, io.SeekStart)
	return err
}

// teeSeeker reads in, writing what it reads to f; once rewound, it reads f.
type teeSeeker struct {
	in     io.Reader
	f      *os.File
	replay bool
}

func (t *teeSeeker) Read(p []byte) (int, error) {
	if t.replay {
		return t.f.Read(p)
	}
	n, err := t.in.Read(p)
	if n > 0 {
		if _, werr := t.f.Write(p[:n]); werr != nil {
			return n, fmt.Errorf("keep standard input for a second reading: %w", werr)
		}
	}
	return n, err
}

func (t *teeSeeker) Seek(offset int64, whence int) (int64, error) {
	if !t.replay {
		// The rest of the input is kept too: the second reading must see what the first saw.
		if _, err := io.Copy(t.f, t.in); err != nil {
			return 0, fmt.Errorf("keep standard input for a second reading: %w", err)
		}
		t.replay = true
	}
	return t.f.Seek(offset, whence)
}

// maxUnknownShown is how many ids not stored `riskflow label` names one by one.
const maxUnknownShown = 20

// labelTarget is what a label marks: a decision or an event of an app.
type labelTarget struct{ kind, appID, id string }

func targetOf(l schemas.Label) labelTarget {
	kind, id := l.Target()
	return labelTarget{kind, l.AppID, id}
}

// flagOf names the flag of a label field.
func flagOf(field string) string {
	switch field {
	case "app_id":
		return "app"
	case "decision_id":
		return "decision"
	case "event_id":
		return "event"
	case "label":
		return "as"
	}
	return field
}

// mergeStoredLabels adds the labels stored in ClickHouse under opts.Labels (a --labels file's
// labels win). A database without a labels table yet (not migrated) is a warning; failing to read
// them otherwise is an error: precision and recall without them would be quietly wrong.
func mergeStoredLabels(ctx context.Context, st *chsink.Store, opts *backtest.Options, stderr io.Writer) error {
	stored, err := chbacktest.StoredLabels(ctx, st)
	if errors.Is(err, chsink.ErrNoTable) {
		fmt.Fprintf(stderr, "backtest: no stored labels (run riskflow migrate): %v\n", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the stored labels (--stored-labels=false to go without): %w", err)
	}
	if len(stored) == 0 {
		return nil
	}
	fmt.Fprintf(stderr, "backtest: %d labelled events from ClickHouse labels\n", len(stored))
	opts.Labels = mergeLabels(stored, opts.Labels)
	return nil
}

// mergeLabels returns the stored labels with a --labels file's on top: the file wins where both
// label an event, also with a line that names no app (it labels the event id in every app, and
// backtest.Labels.Of would read a stored label of the app's own first).
func mergeLabels(stored, file backtest.Labels) backtest.Labels {
	anyApp := map[string]bool{}
	for k := range file {
		if k.AppID == "" {
			anyApp[k.EventID] = true
		}
	}
	for k := range stored {
		if k.AppID != "" && anyApp[k.EventID] {
			delete(stored, k)
		}
	}
	stored.Merge(file)
	return stored
}
