// Package consoletest is an admin's browser for tests of the console (scoring/console): its own
// cookie jar, redirects not followed (a test checks where they lead), the Origin header a browser
// sends with a form, and the session's CSRF token.
package consoletest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser is one admin's browser on one console.
type Browser struct {
	T    testing.TB
	Base string // the console's origin, e.g. https://127.0.0.1:8443
	HTTP *http.Client
	// CSRF, when set, is added to every form Post sends (Login returns the session's token).
	CSRF string
	// DraftRev is the revision of the saved draft of the last draft page this browser got (its
	// form's rev), which Post sends with a draft form that names none, as that page's form does.
	DraftRev string
}

// New returns a browser on the console at base, using hc's transport (its TLS trust: the session
// cookie is Secure, so a browser keeps it over https only) with cookies of its own.
func New(t testing.TB, base string, hc *http.Client) *Browser {
	c := *hc
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Browser{T: t, Base: base, HTTP: &c}
}

// Fork is another browser on the same console: same transport, its own cookies, no token.
func (b *Browser) Fork() *Browser { return New(b.T, b.Base, b.HTTP) }

// Tab is another tab of the same browser: the same cookies and token, and pages of its own (the
// draft revision its forms send).
func (b *Browser) Tab() *Browser {
	t := *b
	return &t
}

var revInPage = regexp.MustCompile(`<input type="hidden" name="rev" value="([^"]*)">`)

// sawPage keeps what a page's forms would send next.
func (b *Browser) sawPage(body string) {
	if m := revInPage.FindStringSubmatch(body); m != nil {
		b.DraftRev = m[1]
	}
}

// Get fetches path and returns the status, the body and the headers.
func (b *Browser) Get(path string) (int, string, http.Header) {
	b.T.Helper()
	resp, err := b.HTTP.Get(b.Base + path)
	if err != nil {
		b.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.sawPage(string(body))
	return resp.StatusCode, string(body), resp.Header
}

// Post submits form to path as a browser does (form encoding, Origin), with the CSRF token if set
// and, to the draft's forms, the draft revision of the last draft page unless form names one.
func (b *Browser) Post(path string, form url.Values) (int, string, http.Header) {
	b.T.Helper()
	if b.CSRF != "" {
		form.Set("csrf", b.CSRF)
	}
	if _, set := form["rev"]; !set && b.DraftRev != "" && (path == "/console/rules/draft" || path == "/console/backtests") {
		form.Set("rev", b.DraftRev)
	}
	req, _ := http.NewRequest(http.MethodPost, b.Base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.Base)
	resp, err := b.HTTP.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.sawPage(string(body))
	return resp.StatusCode, string(body), resp.Header
}

var csrfInPage = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// Login signs in (the console must answer with its redirect to the overview) and returns the
// session's CSRF token, read from the lists page's form. It does not set b.CSRF.
func (b *Browser) Login(who, secret string) string {
	b.T.Helper()
	code, _, h := b.Post("/console/login", url.Values{"name": {who}, "secret": {secret}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/overview" {
		b.T.Fatalf("login %s: %d → %s", who, code, h.Get("Location"))
	}
	_, body, _ := b.Get("/console/lists")
	m := csrfInPage.FindStringSubmatch(body)
	if m == nil {
		b.T.Fatalf("no CSRF token on the lists page:\n%.2000s", body)
	}
	return m[1]
}
