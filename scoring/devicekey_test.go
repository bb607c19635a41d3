package scoring_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring"
)

// TestDeviceIDSpellingsAreOneDevice: a rig that writes its device id in another case, with spaces
// or an invisible character around it, or in full-width letters, at each number is one device
// carrying all of them (phones_per_device), and a block-listed id is blocked in any spelling.
func TestDeviceIDSpellingsAreOneDevice(t *testing.T) {
	lists, err := scoring.ParseLists(strings.NewReader("block device FARM-RIG-07\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newScorer(t, scoring.Config{}, nil, scoring.WithLists(lists))
	spellings := []string{"RIG-A1", "rig-a1", " rig-a1", "rig-a1 ", "ｒｉｇ-ａ１", "rig-a1\u200b"}
	var rec struct {
		score int
		tags  []string
	}
	for i, id := range spellings {
		ev := event(fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("138%08d", 7919*i+11), fmt.Sprintf("183.192.%d.9", i))
		ev.DeviceID = id
		r, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		rec.score, rec.tags = r.Score, r.Tags
		if i == 2 && !hits(r)["phones_per_device"] {
			t.Errorf("third number on device %q (after %q): %d %v, want phones_per_device", id, spellings[:i], r.Score, r.Tags)
		}
	}
	if rec.score != 600 {
		t.Errorf("sixth number on one device spelt six ways: score %d %v, want 600", rec.score, rec.tags)
	}

	ev := event("b1", t0.Add(time.Hour), "13912345678", "58.33.10.22")
	ev.DeviceID = "farm-rig-07 "
	r, err := s.Process(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if r.Score != 900 || !hits(r)["blocklist"] {
		t.Errorf("block-listed FARM-RIG-07 sent as %q: score %d %v, want 900 blocklist", ev.DeviceID, r.Score, r.Tags)
	}
}
