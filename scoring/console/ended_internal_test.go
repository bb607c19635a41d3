package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countingBody is a request body that counts the bytes read from it.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// The form of an ended session comes without credentials, and reading it and giving its draft back
// takes several times its megabyte: only a few are read at once, so that anybody sending many
// (300 at once held 3 GB of an API node, whose checks took 600 ms) cannot take the node's memory.
// One past them is answered 503 with Retry-After, unread; once they are done, a form is read and
// its draft given back again.
func TestFormsOfEndedSessionsAreReadFewAtATime(t *testing.T) {
	s, err := New(Deps{Admins: map[string]string{"alice": "a-secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body io.Reader) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/console/rules/draft", body)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://"+r.Host)
		return r
	}
	// Forms still arriving: each holds its place until its body ends.
	var (
		wg      sync.WaitGroup
		writers []*io.PipeWriter
	)
	for range maxEndedForms {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeHTTP(httptest.NewRecorder(), post(pr))
		}()
	}
	for _, pw := range writers {
		// Returns once the form's reader took it: the form holds its place.
		if _, err := pw.Write([]byte("draft=x")); err != nil {
			t.Fatal(err)
		}
	}

	body := &countingBody{r: strings.NewReader("draft=" + strings.Repeat("'", 1<<20-100))}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, post(body))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "Go back to the form") {
		t.Errorf("a form past the ones being read: %d (Retry-After %q)\n%s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if n := body.read.Load(); n != 0 {
		t.Errorf("%d bytes of it were read, want none", n)
	}

	for _, pw := range writers {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	wg.Wait()
	w = httptest.NewRecorder()
	s.ServeHTTP(w, post(strings.NewReader("draft=pack%3A+p")))
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "your draft was not saved") || !strings.Contains(w.Body.String(), "pack: p") {
		t.Errorf("a form once the others are done: %d\n%s", w.Code, w.Body)
	}
}
