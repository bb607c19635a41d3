package scoring

// Seen reports whether the event (app_id, event_id) is in the feature state (applied within the
// retention): how a replica's freshness is observed.
func (s *Scorer) Seen(appID, eventID string) bool {
	return s.state.Seen(eventKey(s.evKey, appID, eventID))
}
