package scoring_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// A scorer with a two-rule pack: the third verification of one number within 10 minutes is
// observed, and a replayed loginToken is blocked.
func Example() {
	s, err := scoring.New(scoring.Config{}, scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("secret key"))))
	if err != nil {
		panic(err)
	}
	pack, err := rules.Compile([]byte(`
pack: tiny
rules:
  - id: phone_velocity
    tag: phone_velocity
    level: 300
    when: phone_verifies_10m >= 3
    reason: "{phone_verifies_10m} verifications of this number in 10 min"
  - id: token_replay
    tag: token_replay
    level: 900
    when: token_seen > 0
    reason: "loginToken seen {token_seen|once|# times} before"
`), s.Env())
	if err != nil {
		panic(err)
	}
	s.SetPack(pack)

	start := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		ev := schemas.VerifyEvent{
			EventID: fmt.Sprintf("ev-%d", i), TS: start.Add(time.Duration(i) * time.Minute),
			AppID: "app-1", Flow: schemas.FlowOneClickLogin, Phone: "13800138000",
			IP: netip.MustParseAddr("223.104.63.18"), Carrier: "CM", Outcome: schemas.OutcomeSuccess,
			TokenDigest: fmt.Sprintf("%064x", i%2), // the third attempt replays the first token
		}
		rec, err := s.Process(&ev)
		if err != nil {
			panic(err)
		}
		fmt.Println(rec.EventID, rec.PhoneMasked, rec.Score, rec.Tags)
		for _, tag := range rec.Tags {
			fmt.Printf("  %s: %s\n", tag, rec.Detail[tag].Reason)
		}
	}
	// Output:
	// ev-1 1380013**** 0 []
	// ev-2 1380013**** 0 []
	// ev-3 1380013**** 900 [token_replay phone_velocity]
	//   token_replay: loginToken seen once before
	//   phone_velocity: 3 verifications of this number in 10 min
}
