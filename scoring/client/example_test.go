package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/client"
	"github.com/riskflow/riskflow/scoring/geo"
)

// loginTokenVerifyResponse is what a verify service answers to loginTokenVerify: the carrier's
// result plus riskflow's verdict in riskCheck.
type loginTokenVerifyResponse struct {
	ID        int64             `json:"id"`
	Code      int               `json:"code"`
	Content   string            `json:"content"`
	ExID      string            `json:"exID"`
	Phone     string            `json:"phone"` // encrypted with the developer's RSA public key
	RiskCheck schemas.RiskCheck `json:"riskCheck"`
}

// countingPublisher stands in for Kafka behind POST /v1/events.
type countingPublisher struct{ n int }

func (p *countingPublisher) Publish(_ context.Context, evs []schemas.VerifyEvent) error {
	p.n += len(evs)
	return nil
}

// action is what the verify service's customer is advised to do with a score.
func action(score int) string {
	switch score {
	case schemas.ScorePass:
		return "pass"
	case schemas.ScoreObserve:
		return "pass, mark for observation"
	case schemas.ScoreStepUp:
		return "step up to SMS"
	default:
		return "block"
	}
}

func Example() {
	// riskflow itself (the API over a scorer with the default rule pack), in this process: a
	// datacenter address has logged in 25 numbers of one block in the last 10 minutes.
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	loc, _ := geo.Open("", "", geo.WithIDCList(geo.DefaultIDCList()))
	scorer, _ := scoring.New(scoring.Config{}, scoring.WithGeo(loc), scoring.WithClock(func() time.Time { return now }),
		scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("example key"))))
	pack, _ := rules.Compile(packs.Default(), scorer.Env())
	scorer.SetPack(pack)
	for i := 0; i < 25; i++ {
		scorer.Apply(&schemas.VerifyEvent{EventID: fmt.Sprintf("farm-%d", i), TS: now.Add(-time.Duration(9*60-i*20) * time.Second),
			AppID: "app-1", Flow: schemas.FlowOneClickLogin, Phone: fmt.Sprintf("1370000%04d", i), IP: netip.MustParseAddr("47.92.10.20"),
			Carrier: schemas.CarrierMobile, DeviceID: "farm-1", Outcome: schemas.OutcomeSuccess})
	}
	events := &countingPublisher{}
	var replaying atomic.Bool // the node reads its feature state again (a restart): it answers 503
	riskflow := httptest.NewServer(api.New(api.Config{Keys: map[string]string{"app-1": "5e987ac6d2e04d95a9d8f0d1"}, NodeID: "api1-"},
		scorer, events, api.WithLogger(slog.New(slog.DiscardHandler)), api.WithServing(func() error {
			if replaying.Load() {
				return errors.New("state: catching up with Kafka")
			}
			return nil
		})))

	// In production the default 50 ms timeout stays; this example only allows a loaded test
	// machine more time, so that its output does not depend on the machine's speed.
	risk, err := client.New(riskflow.URL, "app-1", "5e987ac6d2e04d95a9d8f0d1", client.WithTimeout(5*time.Second))
	if err != nil {
		panic(err)
	}

	// Inside the loginTokenVerify handler, once the carrier has returned the phone number.
	verify := func(phone, ip, device, exID string) loginTokenVerifyResponse {
		resp := loginTokenVerifyResponse{
			ID: 117270465679982592, Code: 8000, Content: "get phone success", ExID: exID,
			Phone: "HpBLIQ/6SkFl0pAq0LMdw1aZ8RHoofgWmaY//LE+0ahk...",
		}
		rc, err := risk.Check(context.Background(), schemas.CheckRequest{
			Phone: phone, IP: netip.MustParseAddr(ip), Carrier: schemas.CarrierMobile,
			AppID: "app-1", Flow: schemas.FlowOneClickLogin, Platform: "android", DeviceID: device, ExID: exID,
		})
		var (
			unavailable *client.UnavailableError
			apiErr      *client.APIError
		)
		switch {
		case errors.As(err, &unavailable):
			// rc is the fail-open verdict: log why (err has the details) and let the login go on.
			// Test this first: a 5xx, 408 or 429 answer is an *APIError in its chain too.
			fmt.Println("log: risk check unavailable:", unavailable.Reason)
		case errors.As(err, &apiErr):
			// The request is wrong (4xx): fix the caller; rc is empty.
			fmt.Println("log: risk check rejected the request:", apiErr)
		}
		resp.RiskCheck = rc
		return resp
	}

	resp := verify("13800138000", "198.51.100.20", "a3f9e2c1", "1234565")
	fmt.Printf("login %s: score %d -> %s\n", resp.ExID, resp.RiskCheck.Score, action(resp.RiskCheck.Score))

	resp = verify("13700009999", "47.92.10.20", "farm-1", "1234566")
	fmt.Printf("login %s: score %d -> %s\n", resp.ExID, resp.RiskCheck.Score, action(resp.RiskCheck.Score))
	shown := resp
	shown.RiskCheck.RulesVersion = "" // the default pack's content hash: left out, it changes with every edit of the pack
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(shown)

	// Later, the attempt and its outcome go to riskflow, with the verdict's id: the decision log
	// joins what riskflow answered to what happened.
	err = risk.PublishEvents(context.Background(), []schemas.VerifyEvent{{
		EventID: "evt-1234566", TS: now, AppID: "app-1", Flow: schemas.FlowOneClickLogin, Phone: "13700009999",
		IP: netip.MustParseAddr("47.92.10.20"), Carrier: schemas.CarrierMobile, DeviceID: "farm-1",
		Outcome: schemas.OutcomeFail, ErrorCode: "step-up-abandoned", DecisionID: resp.RiskCheck.ID,
	}})
	fmt.Println("published:", events.n, err)

	// riskflow cannot answer for a while (503: its state is being read again): the login goes on.
	replaying.Store(true)
	resp = verify("13700009999", "47.92.10.20", "farm-1", "1234567")
	fmt.Printf("login %s: score %d %v -> %s\n", resp.ExID, resp.RiskCheck.Score, resp.RiskCheck.Tags, action(resp.RiskCheck.Score))

	// riskflow goes away: the login is not held up.
	riskflow.Close()
	resp = verify("13700009999", "47.92.10.20", "farm-1", "1234568")
	fmt.Printf("login %s: score %d %v -> %s\n", resp.ExID, resp.RiskCheck.Score, resp.RiskCheck.Tags, action(resp.RiskCheck.Score))

	// Output:
	// login 1234565: score 0 -> pass
	// login 1234566: score 900 -> block
	// {
	//   "id": 117270465679982592,
	//   "code": 8000,
	//   "content": "get phone success",
	//   "exID": "1234566",
	//   "phone": "HpBLIQ/6SkFl0pAq0LMdw1aZ8RHoofgWmaY//LE+0ahk...",
	//   "riskCheck": {
	//     "code": 0,
	//     "content": "success",
	//     "score": 900,
	//     "tags": [
	//       "phones_per_ip",
	//       "phones_per_device",
	//       "prefix_burst",
	//       "idc_proxy_ip",
	//       "device_velocity"
	//     ],
	//     "detail": {
	//       "device_velocity": {
	//         "score": 300,
	//         "reason": "26 verifications from this device in 10 min"
	//       },
	//       "idc_proxy_ip": {
	//         "score": 600,
	//         "reason": "datacenter/proxy IP (no ASN data)"
	//       },
	//       "phones_per_device": {
	//         "score": 600,
	//         "reason": "26 phones on this device in 24 h"
	//       },
	//       "phones_per_ip": {
	//         "score": 900,
	//         "reason": "26 phones from this datacenter IP in 10 min"
	//       },
	//       "prefix_burst": {
	//         "score": 600,
	//         "reason": "26 numbers starting with 1370000 in this app in 1 h, 26 in 24 h (the app: 26 numbers over 1 block in 1 h)"
	//       }
	//     },
	//     "id": "api1-0000000000000002",
	//     "exID": "1234566"
	//   }
	// }
	// published: 1 <nil>
	// log: risk check unavailable: riskflow answered HTTP 503
	// login 1234567: score 0 [risk_unavailable] -> pass
	// log: risk check unavailable: cannot reach riskflow
	// login 1234568: score 0 [risk_unavailable] -> pass
}
