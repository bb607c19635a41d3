package scoring

import (
	"fmt"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/features"
)

// Seen reports whether the event (app_id, event_id) is in the feature state (applied within the
// retention): how a replica's freshness is observed.
func (s *Scorer) Seen(appID, eventID string) bool {
	return s.state.Seen(eventKey(s.evKey, appID, eventID))
}

// CheckReuse returns a *schemas.FieldError (field ts) when the state already counted the event's
// (app_id, event_id) with another ts, to the second: not a re-delivery of that event but another
// attempt under its id. The state keeps the first and ignores the other (it counts an id once), so
// the scorer dead-letters the other instead of recording it, and what is stored of the event
// stays what its windows counted. A re-delivery (the same ts) and an id not seen within the
// retention pass.
func (s *Scorer) CheckReuse(ev *schemas.VerifyEvent) error {
	sec, ok := s.state.SeenAt(eventKey(s.evKey, ev.AppID, ev.EventID))
	if !ok || sec == features.Sec(ev.TS) {
		return nil
	}
	first := features.SecTime(sec)
	return &schemas.FieldError{Field: "ts", Reason: fmt.Sprintf(
		"event_id %q of app %q was already counted with ts %s, this copy says %s: a re-delivery must repeat the event as it was, and another attempt needs an event_id of its own",
		ev.EventID, ev.AppID, first.Format(time.RFC3339), ev.TS.UTC().Format(time.RFC3339Nano))}
}
