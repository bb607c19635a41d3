package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/internal/httppath"
	"github.com/riskflow/riskflow/scoring/internal/secret"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server is the console's HTTP handler; mount it at /console/.
type Server struct {
	d     Deps
	log   *slog.Logger
	sess  *sessions
	pages map[string]*template.Template
	mux   *http.ServeMux

	mu sync.Mutex
	// draftMu makes checking the revision of an admin's saved draft and writing it one step.
	draftMu sync.Mutex
	// pendingMu makes a decision on a promotion request (approve, withdraw) one step on this node.
	pendingMu sync.Mutex
	jobs      *jobs // backtests running on this node (every node's runs are in Deps.State)
	shared    bool  // Deps.State was given: drafts, requests and runs are every node's
	cache     map[Filter]cachedOverview
	lastAt    time.Time // the newest Item.At this node wrote
	// endedWarned is when ended last logged that the shared state could not be read (unix ns).
	endedWarned atomic.Int64
	// endedForms bounds the forms of ended sessions read at once (sessionEnded).
	endedForms chan struct{}
}

// maxEndedForms is how many forms of ended sessions the console reads at once. Such a form comes
// without a session — anybody can send one — and reading it and giving its draft back takes
// several times its megabyte: unbounded, 300 sent at once made the node hold 3 GB and answer its
// checks in 600 ms instead of 2, and a few thousand would take it past its memory limit.
const maxEndedForms = 4

type cachedOverview struct {
	at time.Time
	ov Overview
}

// overviewOf answers from the cache when a fresh enough answer for f is there.
func (s *Server) overviewOf(ctx context.Context, f Filter) (Overview, error) {
	now := s.d.Now()
	if s.d.CacheFor > 0 {
		s.mu.Lock()
		c, ok := s.cache[f]
		s.mu.Unlock()
		if ok && now.Sub(c.at) < s.d.CacheFor {
			return c.ov, nil
		}
	}
	ov, err := s.d.History.Overview(ctx, f)
	if err == nil && s.d.CacheFor > 0 {
		s.mu.Lock()
		if len(s.cache) >= 64 {
			clear(s.cache)
		}
		s.cache[f] = cachedOverview{at: now, ov: ov}
		s.mu.Unlock()
	}
	return ov, err
}

// New builds the console. Without admins every page answers 404, as the rules admin API does.
func New(d Deps, log *slog.Logger) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MaxJobs <= 0 {
		d.MaxJobs = 8
	}
	if d.MaxHours <= 0 {
		d.MaxHours = 168
	}
	if d.CacheFor == 0 {
		d.CacheFor = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	shared := d.State != nil
	if d.State == nil {
		d.State = NewMemoryState()
	}
	if d.Node == "" {
		d.Node, _ = os.Hostname()
	}
	if d.ClientAddr == nil {
		d.ClientAddr = clientAddr
	}
	s := &Server{d: d, shared: shared, log: log, sess: newSessions(d.Admins, d.Now, d.AppKey), jobs: newJobs(d.MaxJobs), cache: map[Filter]cachedOverview{},
		endedForms: make(chan struct{}, maxEndedForms)}
	if err := s.parse(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	// Files only: the assets are public (the login page needs them), their directory is not a
	// page, and http.FileServer would list it to anyone.
	files := http.StripPrefix("/console/static/", http.FileServerFS(filesOnly{static}))
	m.Handle("GET /console/static/", versioned(files))
	m.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/login", s.loginPage)
	m.HandleFunc("POST /console/login", s.loginPost)
	m.HandleFunc("POST /console/logout", s.authed(s.logout))
	m.HandleFunc("GET /console/overview", s.authed(s.overview))
	m.HandleFunc("GET /console/rules", s.authed(s.rulesPage))
	m.HandleFunc("GET /console/rules/versions/{version}", s.authed(s.versionPage))
	m.HandleFunc("GET /console/rules/draft", s.authed(s.draftPage))
	m.HandleFunc("POST /console/rules/draft", s.authed(s.draftPost))
	m.HandleFunc("POST /console/rules/rollback", s.authed(s.rollback))
	m.HandleFunc("GET /console/rules/pending/{id}", s.authed(s.pendingPage))
	m.HandleFunc("POST /console/rules/pending/{id}", s.authed(s.pendingPost))
	m.HandleFunc("POST /console/backtests", s.authed(s.backtestStart))
	m.HandleFunc("GET /console/backtests/{id}", s.authed(s.backtestPage))
	m.HandleFunc("GET /console/backtests/{id}/progress", s.authed(s.backtestProgress))
	m.HandleFunc("POST /console/backtests/{id}/cancel", s.authed(s.backtestCancel))
	m.HandleFunc("GET /console/lists", s.authed(s.listsPage))
	m.HandleFunc("POST /console/lists", s.authed(s.listsAdd))
	m.HandleFunc("POST /console/lists/remove", s.authed(s.listsRemove))
	m.HandleFunc("GET /console/investigate", s.authed(s.investigate))
	m.HandleFunc("POST /console/investigate", s.authed(s.investigatePost))
	m.HandleFunc("POST /console/investigate/label", s.authed(s.label))
	m.HandleFunc("/console/", s.notFound)
	s.mux = m
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.d.Admins) == 0 {
		http.Error(w, "the console is not enabled on this node (api.admin_keys)", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if p := r.URL.Path; r.Method != http.MethodConnect && p != httppath.Clean(p) {
		// ServeMux would redirect to the clean path, the caller's text in the Location header
		// and the page: a number in it as sent (/console//13912345678), into the browser's
		// history and proxies' logs. No console link is unclean: it is no page (under static/,
		// no file, as the file server answers a directory).
		if strings.HasPrefix(p, "/console/static/") {
			http.NotFound(w, r)
		} else {
			s.notFound(w, r)
		}
		return
	}
	s.mux.ServeHTTP(w, r)
}

// notFound answers a path that is no console page. The path is the caller's: shown short, with
// any phone number masked (a number is never echoed back).
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "error", nil, page{Title: "Not found", Message: "There is no console page " + schemas.ShowName(r.URL.Path, 128) + "."})
}

// filesOnly is an fs.FS whose directories do not exist: a file server on it answers 404 for a
// directory instead of listing what is in it.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

// assetVersions holds each static file's version: the first 16 hex digits of the SHA-256 of its
// content. Pages link an asset with its version (the template function asset), so a browser
// that kept an older build's console.js for a year fetches the new one the moment a page of the
// new build names it.
var assetVersions = func() map[string]string {
	v := map[string]string{}
	err := fs.WalkDir(staticFS, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		v[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		panic("console: reading the embedded static files: " + err.Error())
	}
	return v
}()

// asset is the URL of static file name at this build's version.
func asset(name string) (string, error) {
	v, ok := assetVersions[name]
	if !ok {
		return "", fmt.Errorf("console: no static file %q", name)
	}
	return "/console/static/" + name + "?v=" + v, nil
}

// versioned serves the static files: one asked for at its current version (?v=, as pages link
// it) may be kept for a year, as it never changes under that URL; any other request (no version,
// or an older build's) is revalidated every time against the file's ETag. With one hour for every
// file, an upgrade left browsers running the old console.js against the new pages for up to an
// hour.
func versioned(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := assetVersions[strings.TrimPrefix(r.URL.Path, "/console/static/")]; ok {
			w.Header().Set("ETag", `"`+v+`"`)
			if r.URL.Query().Get("v") == v {
				w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
		}
		h.ServeHTTP(w, r)
	})
}

var fieldName = regexp.MustCompile(`^[a-z_]{1,32}$`)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Who     string
	CSRF    string
	Message string // a notice at the top (green)
	Problem string // an error at the top (red)
	Errs    map[string]string
	Form    map[string]string
	Data    any
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"pct": func(n, of int64) string {
		if of == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
	},
	"json": func(v any) (template.JS, error) {
		b, err := json.Marshal(v)
		return template.JS(b), err
	},
	"join": strings.Join,
	// asset links a static file at this build's version: <script src="{{asset "console.js"}}">.
	"asset": asset,
	// invalid marks a form's field whose error (id err-FIELD, next to it) is in errs: a screen
	// reader then says the field is invalid, and reads the error with it.
	"invalid": func(errs map[string]string, field string) template.HTMLAttr {
		if errs[field] == "" || !fieldName.MatchString(field) {
			return ""
		}
		return template.HTMLAttr(`aria-invalid="true" aria-describedby="err-` + field + `"`)
	},
	// vis shows free text apps stored (event, decision, device and app ids, error codes) with
	// its invisible formatting characters as \u escapes: the decoder lets U+202E and its kind
	// through, and one such id showed the rest of its cell reversed (the examples of a backtest
	// are one cell).
	"vis": visible,
	// note shows free text people wrote outside the console — the notes (comments) and authors
	// of the hand-written lists file — with every phone number masked as well: the console
	// refuses a number in a note typed in its form, but a comment of the file may name one.
	"note": func(s string) string { return visible(schemas.MaskPhones(s)) },
	// caret is the indent that puts a lint problem's ^ under its 1-based column of the listing.
	"caret": func(col int) string { return strings.Repeat(" ", min(max(col-1, 0), 400)) },
	// metric shows a node metric's value: whole numbers as they are, others to the
	// thousandth (0.532, not 0.531761213).
	"metric": func(v float64) string {
		if v == math.Trunc(v) {
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		return strconv.FormatFloat(v, 'f', 3, 64)
	},
	"ratio": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.3f", *v)
	},
}

func (s *Server) parse() error {
	s.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("console: parse %s: %w", n, err)
		}
		s.pages[base] = t
	}
	return nil
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, ss *session, p page) {
	if ss != nil {
		p.Who, p.CSRF = ss.who, ss.csrf
	}
	if p.Nav == "" {
		p.Nav = name
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, p); err != nil {
		s.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// authed requires a session, and on POST a valid CSRF token from the same origin.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := s.sess.get(r)
		if ss != nil && s.ended(r.Context(), ss) {
			ss = nil
		}
		if ss == nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/progress") {
				http.Redirect(w, r, "/console/login?next="+urlQueryEscape(withoutNumber(r.URL.RequestURI())), http.StatusSeeOther)
				return
			}
			if r.Method == http.MethodPost && r.Header.Get("Origin") != "" && sameOrigin(r) {
				if r.URL.Path == "/console/logout" {
					// Ended already (elsewhere, or expired): what was asked is done.
					setCookie(w, "", 0)
					http.Redirect(w, r, "/console/login", http.StatusSeeOther)
					return
				}
				s.sessionEnded(w, r)
				return
			}
			http.Error(w, "log in first: /console/login", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
				return
			}
			if !sameOrigin(r) || !tokenEqual(r.PostForm.Get("csrf"), ss.csrf) {
				s.render(w, r, http.StatusForbidden, "error", ss, page{Title: "Refused", Problem: "The form's CSRF token is missing or stale, or it came from another site. Reload the page and try again."})
				return
			}
		}
		h(w, r, ss)
	}
}

// sessionEnded answers a form sent from a console page whose session ended meanwhile (its 8 hours,
// a logout on another node, a changed secret): the login form, saying that nothing was done, and
// a draft sent with the form given back to copy — a plain "log in first" lost the rule pack an
// admin had been editing. Only for a browser's own same-origin form (Origin names this host): a
// page elsewhere cannot make the console show its text.
//
// At most maxEndedForms are read at once: past them the form is not read, and the answer says to
// go back to it (the browser keeps what was typed) and send it again.
func (s *Server) sessionEnded(w http.ResponseWriter, r *http.Request) {
	select {
	case s.endedForms <- struct{}{}:
		defer func() { <-s.endedForms }()
	default:
		w.Header().Set("Retry-After", "1")
		s.render(w, r, http.StatusServiceUnavailable, "login", nil, page{Title: "Log in", Form: map[string]string{"next": "/console/overview"},
			Problem: "Your session has ended (sessions last 8 hours; a logout ends them on every node): what you sent was not done, and the console is too busy now to give back what the form held. Go back to the form (your browser keeps it), copy what you typed, log in and do it again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxDraft+64<<10)
	_ = r.ParseForm()
	next := "/console/overview"
	if u, err := url.Parse(r.Header.Get("Referer")); err == nil && u.Host == r.Host {
		next = safeNext(u.RequestURI())
	}
	p := page{Title: "Log in", Form: map[string]string{"next": next},
		Problem: "Your session has ended (sessions last 8 hours; a logout ends them on every node): what you sent was not done. Log in and do it again."}
	if d := r.PostForm.Get("draft"); strings.TrimSpace(d) != "" && (r.URL.Path == "/console/rules/draft" || r.URL.Path == "/console/backtests") {
		p.Problem = "Your session has ended (sessions last 8 hours; a logout ends them on every node): your draft was not saved. It is below: copy it, log in, and paste it into the draft again."
		p.Data = strings.ReplaceAll(d, "\r\n", "\n")
		p.Form["next"] = "/console/rules/draft"
	}
	s.render(w, r, http.StatusUnauthorized, "login", nil, p)
}

// ended reports whether the session was ended by a logout on another node (the shared state's
// session_ended items); this node then revokes it too. When the shared state cannot be read, the
// session stands (logouts on this node still hold): a ClickHouse outage must not lock the risk
// team out of the lists and rules it may need during the outage.
func (s *Server) ended(ctx context.Context, ss *session) bool {
	if !s.shared {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, found, err := s.d.State.Get(ctx, ItemSessionEnded, ss.nonce)
	if err != nil {
		// Once a minute: every console request asks while ClickHouse is away.
		if now, last := time.Now().UnixNano(), s.endedWarned.Load(); now-last >= int64(time.Minute) && s.endedWarned.CompareAndSwap(last, now) {
			s.log.Warn("console: could not check whether sessions ended on another node; they stand meanwhile", "admin", ss.who, "err", err)
		}
		return false
	}
	if found {
		s.sess.revoke(ss)
	}
	return found
}

func tokenEqual(a, b string) bool {
	return a != "" && secret.Equal(a, b)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if ss := s.sess.get(r); ss != nil && !s.ended(r.Context(), ss) {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", nil, page{Title: "Log in", Form: map[string]string{"next": withoutNumber(r.URL.Query().Get("next"))}, Problem: plainHTTP(r)})
}

// plainHTTP warns when the page came over HTTP from a host a browser does not treat as secure:
// the Secure session cookie would be dropped and every login would come back here.
func plainHTTP(r *http.Request) string {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return ""
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return ""
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.IsLoopback() {
		return ""
	}
	return "This page came over plain HTTP: browsers keep the console's session cookie (Secure) only over HTTPS, so a login would not stick. Serve the API over HTTPS (api.tls_cert) or behind an HTTPS proxy."
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !sameOrigin(r) {
		http.Error(w, "bad login form", http.StatusBadRequest)
		return
	}
	who, secret, next := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("secret"), r.PostForm.Get("next")
	// Given back as sent, but for a phone number (no admin is named by one; a number in next= is
	// no page to come back to): the failed login's form shows neither.
	p := page{Title: "Log in", Errs: map[string]string{}, Form: map[string]string{"name": schemas.MaskPhones(who), "next": withoutNumber(next)}}
	if who == "" {
		p.Errs["name"] = "name: required (an admin name of api.admin_keys)"
	}
	if secret == "" {
		p.Errs["secret"] = "secret: required"
	}
	if len(p.Errs) > 0 {
		s.render(w, r, http.StatusBadRequest, "login", nil, p)
		return
	}
	client := s.d.ClientAddr(r)
	ss, err := s.sess.login(client, who, secret)
	if err != nil {
		status := http.StatusUnauthorized
		switch {
		case errors.Is(err, errThrottled):
			status = http.StatusTooManyRequests
		case errors.Is(err, errAppKey):
			status = http.StatusForbidden
		default:
			// The audit trail of a guessing client (at most maxFails lines a minute per address:
			// then it is throttled). A name that is no admin's is not logged: it may be a secret
			// typed into the wrong field.
			name := who
			if _, known := s.d.Admins[who]; !known {
				name = "(not an admin)"
			}
			s.log.Warn("console: failed login", "admin", name, "client", client)
		}
		p.Errs["secret"] = err.Error()
		s.render(w, r, status, "login", nil, p)
		return
	}
	setCookie(w, s.sess.cookieValue(ss), ss.exp.Sub(s.sess.now()))
	s.log.Info("console login", "admin", who)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(n string) string {
	if _, ok := consolePath(n); ok {
		// What is sent, cleaned, has segments n had not: "/console/a%2fb/../..%2f}x" is sent as
		// "/console/..%2f}x", which read decoded is "/}x". It is checked too.
		if r := withoutNumber(redirectClean(n)); r != n {
			if _, ok := consolePath(r); !ok {
				return "/console/overview"
			}
			return r
		}
		return n
	}
	return "/console/overview"
}

// redirectClean is n as http.Redirect sends it: what is before the query cleaned as a path (a
// trailing slash kept). withoutNumber reads that: the cleaning may join digits into a number
// ("10000  0  0  0  0  0/./ 0X" was sent as "…0/ 0X", a phone number as people write one).
func redirectClean(n string) string {
	p, q, found := strings.Cut(n, "?")
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if found {
		c += "?" + q
	}
	return c
}

// withoutNumber is a console URL without its query when the query holds a phone number (a link
// to a number's page, opened without a session), and the overview when its path holds one (a
// link to /console/rules/versions/13800138000): the number goes into no further URL or form.
func withoutNumber(uri string) string {
	p, q, found := strings.Cut(uri, "?")
	if holdsNumber(p, url.PathUnescape) || holdsNumber(nonASCIIEscaped(p), url.PathUnescape) {
		return "/console/overview"
	}
	if found && (holdsNumber(q, url.QueryUnescape) || holdsNumber(nonASCIIEscaped(q), url.QueryUnescape)) {
		return p
	}
	return uri
}

// nonASCIIEscaped is s as http.Redirect sends it, every byte beyond ASCII %-escaped: digits glued
// to others of another script ("13812345678１３８", no number) stand apart there
// ("13812345678%ef%bc%91…").
func nonASCIIEscaped(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			fmt.Fprintf(&b, "%%%02x", s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// holdsNumber reports whether s holds a phone number as typed, or escaped once or twice on its
// way through next=.
func holdsNumber(s string, unescape func(string) (string, error)) bool {
	for range 3 {
		if schemas.ContainsPhone(s) {
			return true
		}
		u, err := unescape(s)
		if err != nil || u == s {
			break
		}
		s = u
	}
	return false
}

// consolePath returns the path a redirect to n leads to, cleaned as a browser reads it, and
// whether n is a path on this console: no scheme or host, no backslash (a browser reads "/\x" as
// "//x", another site), no tab or line break (a browser drops them: "/\t/x" is "//x"), and its
// path, once its dot segments (%2e too) are resolved, still under /console/. No fragment either:
// http.Redirect cleans all before the query as a path, a fragment's dot segments too
// ("/console/x#/../.." was sent as "/").
func consolePath(n string) (string, bool) {
	if !strings.HasPrefix(n, "/console/") || strings.ContainsFunc(n, func(r rune) bool { return r == '\\' || r == '#' || unicode.IsControl(r) }) {
		return "", false
	}
	u, err := url.Parse(n)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.ContainsFunc(u.Path, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) {
		return "", false
	}
	p := path.Clean(u.Path)
	if !strings.HasPrefix(p+"/", "/console/") {
		return "", false
	}
	// As the redirect cleans it and a browser reads it: an escaped slash parts no segment
	// ("/console/a%2fb/../../x" is sent as "/x"), an escaped dot makes a dot segment.
	raw, _, _ := strings.Cut(n, "?")
	if !strings.HasPrefix(path.Clean(escapedDots.Replace(raw))+"/", "/console/") {
		return "", false
	}
	return p, true
}

var escapedDots = strings.NewReplacer("%2e", ".", "%2E", ".")

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	s.sess.revoke(ss)
	if s.shared {
		// Every node: the cookie is still valid where this node's memory does not reach.
		ctx, cancel := pageCtx(r)
		defer cancel()
		if err := s.put(ctx, Item{Kind: ItemSessionEnded, ID: ss.nonce, Admin: ss.who}); err != nil {
			s.log.Warn("console: logout: the other nodes were not told; the session ends there when it expires",
				"admin", ss.who, "expires", ss.exp.UTC(), "err", err)
		}
	}
	setCookie(w, "", 0)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// notAvailable renders an error from a part as a sentence for the page.
func notAvailable(what string, err error) string {
	if err == nil {
		return ""
	}
	return what + ": " + err.Error()
}

// put writes an item of the shared state as this node, stamped with a time later than any this
// node wrote before (so that of two writes in a row the second wins, whatever the clock does).
func (s *Server) put(ctx context.Context, it Item) error {
	s.mu.Lock()
	at := time.Now().UTC()
	if !at.After(s.lastAt) {
		at = s.lastAt.Add(time.Microsecond)
	}
	s.lastAt = at
	s.mu.Unlock()
	it.Node, it.At = s.d.Node, at
	if err := s.d.State.Put(ctx, it); err != nil {
		return fmt.Errorf("save the console's %s %s: %w", it.Kind, it.ID, err)
	}
	return nil
}

// ctx bounds a page's work: pages must stay fast, and a slow ClickHouse must not hold a request.
func pageCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// visible is schemas.Visible, as lookup prints stored values.
func visible(s string) string { return schemas.Visible(s) }
