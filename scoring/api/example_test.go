package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// datacenterChecker stands in for scoring.Scorer: every number seen from 47.92.0.0/16 is blocked.
type datacenterChecker struct{}

func (datacenterChecker) Check(req *schemas.CheckRequest) (schemas.RiskCheck, error) {
	if !strings.HasPrefix(req.IP.String(), "47.92.") {
		return schemas.RiskCheck{Score: schemas.ScorePass, RulesVersion: "example-1"}, nil
	}
	return schemas.RiskCheck{
		Score: schemas.ScoreBlock,
		Tags:  []string{"phones_per_ip"},
		Detail: map[string]schemas.TagDetail{
			"phones_per_ip": {Score: schemas.ScoreBlock, Reason: "26 phones from this datacenter IP in 10 min"},
		},
		RulesVersion: "example-1",
	}, nil
}

// A verify service asks for the riskCheck of a one-click login before answering loginTokenVerify.
func Example() {
	srv := api.New(api.Config{Keys: map[string]string{"demo": "demo-secret"}, NodeID: "node1-"}, datacenterChecker{}, nil)

	body := `{"phone":"+8613700009999","ip":"47.92.10.20","carrier":"CM","app_id":"demo","flow":"one_click_login","ex_id":"login-7"}`
	req := httptest.NewRequest(http.MethodPost, "/v1/risk/check", strings.NewReader(body))
	req.SetBasicAuth("demo", "demo-secret")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	fmt.Println(w.Code)
	fmt.Print(w.Body)

	// A bad request names the field.
	req = httptest.NewRequest(http.MethodPost, "/v1/risk/check", strings.NewReader(`{"phone":"13700009999","ip":"47.92.10","app_id":"demo"}`))
	req.SetBasicAuth("demo", "demo-secret")
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	fmt.Println(w.Code)
	fmt.Print(w.Body)
	// Output:
	// 200
	// {"code":0,"content":"success","score":900,"tags":["phones_per_ip"],"detail":{"phones_per_ip":{"score":900,"reason":"26 phones from this datacenter IP in 10 min"}},"id":"node1-0000000000000001","exID":"login-7","rules_version":"example-1"}
	// 400
	// {"code":400,"content":"ip: \"47.92.10\" is not an IP address"}
}
