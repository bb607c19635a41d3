package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/riskflow/riskflow/scoring/console"
)

// The console is an http.Handler for /console/; parts a node does not have stay nil and their
// pages say so.
func ExampleNew() {
	c, err := console.New(console.Deps{Admins: map[string]string{"risk-lead": "secret"}}, nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", c)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console/rules", nil))
	fmt.Println(rec.Code, rec.Header().Get("Location"))
	// Output: 303 /console/login?next=%2Fconsole%2Frules
}
