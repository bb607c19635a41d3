package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/client"
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
	// A stand-in for riskflow: one IP has logged in many phones in the last hour.
	riskflow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := schemas.DecodeCheckRequest(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(schemas.ErrorBody{Code: 1001, Content: err.Error()})
			return
		}
		rc := schemas.RiskCheck{Content: "success", ExID: req.ExID}
		if req.IP == netip.MustParseAddr("203.0.113.7") {
			rc.Score = schemas.ScoreStepUp
			rc.Tags = []string{"ip_many_phones"}
			rc.Detail = map[string]schemas.TagDetail{"ip_many_phones": {Score: 600, Reason: "38 phones from this IP in 1h"}}
		}
		json.NewEncoder(w).Encode(rc)
	}))

	// In production the default 50 ms timeout stays; this example only allows a loaded test
	// machine more time, so that its output does not depend on the machine's speed.
	risk, err := client.New(riskflow.URL, "7d431e42dfa6a6d693ac2d04", "5e987ac6d2e04d95a9d8f0d1",
		client.WithTimeout(5*time.Second))
	if err != nil {
		panic(err)
	}

	// Inside the loginTokenVerify handler, once the carrier has returned the phone number.
	verify := func(ip, exID string) loginTokenVerifyResponse {
		resp := loginTokenVerifyResponse{
			ID: 117270465679982592, Code: 8000, Content: "get phone success", ExID: exID,
			Phone: "HpBLIQ/6SkFl0pAq0LMdw1aZ8RHoofgWmaY//LE+0ahk...",
		}
		rc, err := risk.Check(context.Background(), schemas.CheckRequest{
			Phone: "13800138000", IP: netip.MustParseAddr(ip), Carrier: schemas.CarrierMobile,
			AppID: "app-1", Flow: schemas.FlowOneClickLogin, Platform: "android", ExID: exID,
		})
		var (
			apiErr      *client.APIError
			unavailable *client.UnavailableError
		)
		switch {
		case errors.As(err, &apiErr):
			// The request is wrong (4xx): fix the caller; rc is empty.
			fmt.Println("log: risk check rejected the request:", apiErr)
		case errors.As(err, &unavailable):
			// rc is the fail-open verdict: log why (err has the details) and let the login go on.
			fmt.Println("log: risk check unavailable:", unavailable.Reason)
		}
		resp.RiskCheck = rc
		return resp
	}

	resp := verify("198.51.100.20", "1234565")
	fmt.Printf("login %s: score %d -> %s\n", resp.ExID, resp.RiskCheck.Score, action(resp.RiskCheck.Score))

	resp = verify("203.0.113.7", "1234566")
	fmt.Printf("login %s: score %d -> %s\n", resp.ExID, resp.RiskCheck.Score, action(resp.RiskCheck.Score))
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(resp)

	// riskflow goes away: the login is not held up.
	riskflow.Close()
	resp = verify("203.0.113.7", "1234567")
	fmt.Printf("login %s: score %d %v -> %s\n", resp.ExID, resp.RiskCheck.Score, resp.RiskCheck.Tags, action(resp.RiskCheck.Score))

	// Output:
	// login 1234565: score 0 -> pass
	// login 1234566: score 600 -> step up to SMS
	// {
	//   "id": 117270465679982592,
	//   "code": 8000,
	//   "content": "get phone success",
	//   "exID": "1234566",
	//   "phone": "HpBLIQ/6SkFl0pAq0LMdw1aZ8RHoofgWmaY//LE+0ahk...",
	//   "riskCheck": {
	//     "code": 0,
	//     "content": "success",
	//     "score": 600,
	//     "tags": [
	//       "ip_many_phones"
	//     ],
	//     "detail": {
	//       "ip_many_phones": {
	//         "score": 600,
	//         "reason": "38 phones from this IP in 1h"
	//       }
	//     },
	//     "exID": "1234566"
	//   }
	// }
	// log: risk check unavailable: cannot reach riskflow
	// login 1234567: score 0 [risk_unavailable] -> pass
}
