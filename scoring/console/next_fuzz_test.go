package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// FuzzSafeNext feeds next= and back= values (a login link's, a form's) to safeNext, then to
// http.Redirect as the login does, and reads the Location the way a browser does (backslashes as
// slashes, tabs and line breaks dropped, dot segments resolved, %2e too). Whatever the value, the
// browser stays on this console, under /console/, and the Location holds no phone number, as
// typed or escaped (up to twice more).
//
//	go test -run '^$' -fuzz '^FuzzSafeNext$' -fuzztime 5m ./scoring/console
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/investigate?kind=phone&value=13800138000", "/console/rules", "/console/investigate/../../\\evil.com",
		"/console/investigate/../../\t/evil.com", "/console/investigate/../..//evil.com", `/console/investigate\..\..\evil.com`,
		"//evil.com/console/investigate", "https://evil.com/console/investigate", "/console/investigate/%2e%2e/%2e%2e/%5cevil.com",
		"/console/rules/versions/13800138000", "/console/investigate?value=%2B86%2520138%25201234%25208000", "/console/%2e%2e/x",
		"/console/lists?x=1#frag", "/console/./../console/overview"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://console.example/console/login")
	f.Fuzz(func(t *testing.T, next string) {
		r := safeNext(next)
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest(http.MethodPost, "/console/login", nil), r, http.StatusSeeOther)
		loc := rec.Header().Get("Location")
		read := strings.NewReplacer("\\", "/", "\t", "", "\n", "", "\r", "").Replace(loc)
		u, err := url.Parse(read)
		if err != nil {
			t.Fatalf("next=%q: Location %q does not parse: %v", next, loc, err)
		}
		to := base.ResolveReference(u)
		p, err := url.PathUnescape(to.EscapedPath())
		if err != nil {
			p = to.Path
		}
		if to.Host != base.Host || to.Scheme != base.Scheme || !strings.HasPrefix(path.Clean(p)+"/", "/console/") {
			t.Fatalf("next=%q: Location %q leads to %s", next, loc, to)
		}
		s := loc
		for range 3 {
			if schemas.ContainsPhone(s) {
				t.Fatalf("next=%q: Location %q holds a phone number", next, loc)
			}
			if s, err = url.QueryUnescape(s); err != nil {
				break
			}
		}
	})
}
