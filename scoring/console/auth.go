package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	secretpkg "github.com/riskflow/riskflow/scoring/internal/secret"
)

// Sessions are signed cookies, not server state, so any node with the same admin keys accepts
// them (behind a load balancer a session works on every api node). The cookie is
// name|expiry|nonce|mac where mac = HMAC-SHA256 keyed by a key derived from that admin's secret:
// changing an admin's secret ends their sessions. Logging out revokes the nonce on the node that
// served it and, with a shared state (Deps.State), on every node: the logout is an item there
// (ItemSessionEnded) that each node checks on every request. The cookie is cleared; sessions last
// sessionTTL.
//
// CSRF: every form carries csrf = HMAC(key, "csrf|"+nonce), checked on every POST together with
// the Origin header when the browser sends one. The cookie is SameSite=Strict as well.

const (
	cookieName = "riskflow_console"
	sessionTTL = 8 * time.Hour
)

type session struct {
	who   string
	nonce string
	exp   time.Time
	csrf  string
}

type sessions struct {
	admins  map[string]string
	appKey  func(name, secret string) bool // Deps.AppKey; nil: no app keys
	now     func() time.Time
	mu      sync.Mutex
	revoked map[string]time.Time // nonce → expiry (kept until then)
	fails   map[string][]time.Time
}

func newSessions(admins map[string]string, now func() time.Time, appKey func(name, secret string) bool) *sessions {
	return &sessions{admins: admins, appKey: appKey, now: now, revoked: map[string]time.Time{}, fails: map[string][]time.Time{}}
}

func (s *sessions) key(who string) []byte {
	h := sha256.Sum256([]byte("riskflow console session\x00" + who + "\x00" + s.admins[who]))
	return h[:]
}

func mac(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errLogin is the one answer to a wrong name or secret: it does not say which.
var errLogin = errors.New("unknown admin or wrong secret")

// errAppKey answers an app's right credentials (api.keys): no guess, so no failed login — a
// verify service's tries locked the names that are no admin's out of its host's address — and
// said as the admin routes say it (403).
var errAppKey = errors.New("this is an app key (api.keys), which calls POST /v1/risk/check and POST /v1/events: the console takes an admin's name and secret (api.admin_keys)")

// errThrottled answers a client that failed too often lately.
var errThrottled = errors.New("too many failed logins for this name from this address: wait a minute")

const (
	maxFails    = 5
	failsWindow = time.Minute
	maxTracked  = 10000 // addresses with recent failures kept before old ones are pruned
)

// login checks credentials in constant time and returns a new session. Failures are counted per
// client address and name — an admin's name in a bucket of its own, any other name in the
// address's shared one — so that one admin's typos (or guesses at one admin's secret) do not lock
// the other admins behind the same address out, as the API counts its failed authentications.
func (s *sessions) login(addr, who, secret string) (*session, error) {
	now := s.now()
	client := addr + "\x00"
	if _, known := s.admins[who]; known {
		client += who
	}
	s.mu.Lock()
	recent := s.fails[client][:0]
	for _, t := range s.fails[client] {
		if now.Sub(t) < failsWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(s.fails, client) // a client without recent failures takes no room
	} else {
		s.fails[client] = recent
	}
	throttled := len(recent) >= maxFails
	s.mu.Unlock()
	if throttled {
		return nil, errThrottled
	}
	want, known := s.admins[who]
	if !known {
		want = "\x00never-matches\x00"
	}
	if !secretpkg.Equal(secret, want) || !known || who == "" {
		// Asked whatever the name: asked only for a name that is no admin's, the extra comparison
		// made a failed login's timing tell whether the name is an admin's.
		app := s.appKey != nil && s.appKey(who, secret)
		if !known && app {
			return nil, errAppKey
		}
		s.mu.Lock()
		if len(s.fails) >= maxTracked {
			s.evictLocked(now)
		}
		s.fails[client] = append(s.fails[client], now)
		s.mu.Unlock()
		return nil, errLogin
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, err
	}
	ss := &session{who: who, nonce: hex.EncodeToString(n[:]), exp: now.Add(sessionTTL)}
	ss.csrf = mac(s.key(who), "csrf|"+ss.nonce)
	return ss, nil
}

// evictLocked makes room in fails: it forgets the clients whose failures are old and, if more
// than three quarters of maxTracked failed within the window (a guesser rotating through more
// addresses than that), others too, as the API's throttle does. The map kept every client that
// failed within the last minute and scanned it whole at every failure past maxTracked: guesses
// from ever more addresses grew it without bound, each one's scan longer, under the lock every
// login takes. Back at three quarters, the next scan is a quarter of maxTracked failures away.
func (s *sessions) evictLocked(now time.Time) {
	for c, ts := range s.fails {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= failsWindow {
			delete(s.fails, c)
		}
	}
	for c := range s.fails {
		if len(s.fails) <= maxTracked*3/4 {
			break
		}
		delete(s.fails, c)
	}
}

func (s *sessions) cookieValue(ss *session) string {
	body := url.QueryEscape(ss.who) + "|" + strconv.FormatInt(ss.exp.Unix(), 10) + "|" + ss.nonce
	return body + "|" + mac(s.key(ss.who), body)
}

// get returns the request's session, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	parts := strings.Split(c.Value, "|")
	if len(parts) != 4 {
		return nil
	}
	who, err := url.QueryUnescape(parts[0])
	if err != nil {
		return nil
	}
	if _, ok := s.admins[who]; !ok {
		return nil
	}
	body := strings.Join(parts[:3], "|")
	if !hmac.Equal([]byte(mac(s.key(who), body)), []byte(parts[3])) {
		return nil
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || s.now().Unix() >= exp {
		return nil
	}
	s.mu.Lock()
	_, revoked := s.revoked[parts[2]]
	s.mu.Unlock()
	if revoked {
		return nil
	}
	ss := &session{who: who, nonce: parts[2], exp: time.Unix(exp, 0)}
	ss.csrf = mac(s.key(who), "csrf|"+ss.nonce)
	return ss
}

func (s *sessions) revoke(ss *session) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, exp := range s.revoked {
		if now.After(exp) {
			delete(s.revoked, n)
		}
	}
	s.revoked[ss.nonce] = ss.exp
}

// setCookie sets the session cookie for ttl (an empty value deletes it). The lifetime goes as
// Max-Age, counted from when the browser receives it: an Expires date from this node's clock would
// end the session early, or at once, in a browser whose clock differs (the node's session still
// checks its own expiry in the value).
func setCookie(w http.ResponseWriter, value string, ttl time.Duration) {
	c := &http.Cookie{
		Name: cookieName, Value: value, Path: "/console",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
	if value == "" || ttl < time.Second {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(ttl / time.Second)
	}
	http.SetCookie(w, c)
}

// sameOrigin refuses a POST from another origin. The browser's own word comes first, as in
// net/http's CrossOriginProtection, which guards the API's routes: Sec-Fetch-Site, a header no page
// can set, passes "same-origin" (and "none", a request the user made) and refuses any other value.
// Without it (an older browser), the Origin (or, without one, the Referer) must name this host.
// A request without any of them (a script) still needs the CSRF token. Trusting Sec-Fetch-Site
// first keeps the console's own forms working behind a proxy that rewrites Host (nginx's
// proxy_pass does unless told proxy_set_header Host): there its login was refused as coming from
// another site (held-out run: "bad login form" in Chromium through such a proxy).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "":
	case "same-origin", "none":
		return true
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return u.Host == r.Host
}

// clientAddr is the remote address without its port.
func clientAddr(r *http.Request) string {
	a := r.RemoteAddr
	if i := strings.LastIndexByte(a, ':'); i > 0 {
		a = a[:i]
	}
	return a
}

// A notice is the sentence a page shows at the top after a redirect ("Promoted version …"). It
// comes in the redirect's query, signed for the session: a page shows it only with the signature,
// so a link from elsewhere cannot make the console say what its author wants (a fake "session
// expired, log in at …" above a real page).

// notice is the query of a redirect that carries msg to the next page.
func (s *Server) notice(ss *session, msg string) string {
	return "msg=" + url.QueryEscape(msg) + "&sig=" + s.sess.noticeMAC(ss, msg)
}

// noticeOf is the notice the request carries for its session, or "" if it has none or its
// signature does not match.
func (s *Server) noticeOf(r *http.Request, ss *session) string {
	q := r.URL.Query()
	msg, sig := q.Get("msg"), q.Get("sig")
	if msg == "" || ss == nil || !hmac.Equal([]byte(sig), []byte(s.sess.noticeMAC(ss, msg))) {
		return ""
	}
	return msg
}

func (s *sessions) noticeMAC(ss *session, msg string) string {
	return mac(s.key(ss.who), "notice|"+ss.nonce+"|"+msg)
}
