package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
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
	file := fs.String("file", "", "labels as JSON (an object or an array of {app_id, decision_id|event_id, label, note}, or JSON lines, as FORMAT JSONEachRow writes them); - for stdin")
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
	case *file != "" && (*app != "" || *decision != "" || *event != "" || *as != ""):
		return usagef("label: --file or --app/--decision/--event/--as, not both")
	case *file != "":
		var b []byte
		var err error
		if *file == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*file)
		}
		if err != nil { // the path is the caller's: a number in it is masked
			return usageError{errors.New("--file: " + schemas.MaskPhones(err.Error()))}
		}
		if labels, err = schemas.DecodeLabelFile(b); err != nil {
			return usageError{fmt.Errorf("--file %s: %w", *file, err)}
		}
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
	who := *by
	if who == "" {
		who = "unknown"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
	}
	now := time.Now().UTC()
	for i := range labels {
		labels[i].LabeledBy, labels[i].LabeledAt = "cli:"+who, now
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
	if _, err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("label: %s: migrate: %w", where, err)
	}
	if err := st.WriteLabels(ctx, labels); err != nil {
		return fmt.Errorf("label: %s: %w", where, err)
	}
	for _, l := range labels {
		kind, id := l.Target()
		fmt.Fprintf(stdout, "labelled %s %s of %s as %s (by %s)\n", kind, id, l.AppID, l.Label, l.LabeledBy)
	}
	// A label of an id that is not stored never counts: say so (the label is kept — the
	// archiver may only be behind).
	unknown, err := st.UnknownTargets(ctx, labels)
	if err != nil {
		fmt.Fprintf(stderr, "warning: could not check that the labelled ids are stored: %v\n", err)
		return nil
	}
	for i, l := range unknown {
		if i == maxUnknownShown {
			// A bulk file of ids not archived yet: the count, not a line each.
			fmt.Fprintf(stderr, "warning: and %d more labelled ids not stored (%d of the %d labels): they never count in a backtest unless the archiver stores them later\n",
				len(unknown)-i, len(unknown), len(labels))
			break
		}
		kind, id := l.Target()
		table := "risk_decisions"
		if kind == schemas.LabelTargetEvent {
			table = "verify_events"
		}
		fmt.Fprintf(stderr, "warning: no %s %s of app %s in %s: a mistyped id or app never counts in a backtest (if it was just made, the archiver may be behind)\n",
			kind, id, l.AppID, table)
	}
	return nil
}

// maxUnknownShown is how many labels of ids not stored `riskflow label` names one by one.
const maxUnknownShown = 20

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
