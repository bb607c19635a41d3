package httppath

import "testing"

func TestClean(t *testing.T) {
	for p, want := range map[string]string{
		"": "/", "/": "/", "/v1/risk/check": "/v1/risk/check", "/v1//risk/check": "/v1/risk/check",
		"/v1/./events": "/v1/events", "/x/../v1/events": "/v1/events", "/console/": "/console/",
		"/console//": "/console/", "console/overview": "/console/overview", "/a/b/..": "/a",
	} {
		if got := Clean(p); got != want {
			t.Errorf("Clean(%q) = %q, want %q", p, got, want)
		}
	}
}
