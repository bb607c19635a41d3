package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/scoring/api"
)

// writeCert writes a self-signed key pair for 127.0.0.1 with the given serial to cert and key
// (through a rename, as a secret volume or cert-manager replaces them).
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	writeCertValid(t, certFile, keyFile, serial, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// writeCertValid is writeCert with the certificate valid from notBefore to notAfter.
func writeCertValid(t *testing.T, certFile, keyFile string, serial int64, notBefore, notAfter time.Time) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "riskflow test"},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string][]byte{certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})} {
		if err := os.WriteFile(f+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		// A later modification time than the previous pair's, whatever the file system's clock
		// granularity.
		at := time.Unix(1_700_000_000+serial*100, 0)
		if err := os.Chtimes(f+".new", at, at); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
}

// serveTLSCert is serveTLS with a certificate of serial 1 written for it (api.tls_cert, api.tls_key:
// certFile, keyFile), the node logging nowhere.
func serveTLSCert(t *testing.T) (certFile, keyFile string, ln net.Listener) {
	t.Helper()
	dir := tempDir(t)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler)}
	a.cfg.API.TLSCert, a.cfg.API.TLSKey = certFile, keyFile
	return certFile, keyFile, serveTLS(t, a)
}

// serveTLS listens as the API listens, with a's api.tls_cert, and answers every request 404 until
// the test ends; the listener.
func serveTLS(t *testing.T, a *app) net.Listener {
	t.Helper()
	ln, err := a.listenAPI("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler(), ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln
}

// A rotated api.tls_cert is served to the next connection, without a restart; a pair that does
// not load leaves the previous one served.
func TestAPITLSCertificateReloaded(t *testing.T) {
	certFile, keyFile, ln := serveTLSCert(t)
	served := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := served(); got != 1 {
		t.Fatalf("serial %d served, want 1", got)
	}
	writeCert(t, certFile, keyFile, 2)
	if got := served(); got != 2 {
		t.Errorf("after rotation: serial %d served, want 2", got)
	}
	// A key that does not match the certificate: the rotated pair stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != 2 {
		t.Errorf("after a broken key: serial %d served, want 2 still", got)
	}
}

// TLS 1.2 is offered with AEAD suites only: a client offering nothing but Go's default CBC-SHA1
// suites is refused at the handshake; one offering AES-GCM is served.
func TestAPITLSOffersAEADSuitesOnly(t *testing.T) {
	_, _, ln := serveTLSCert(t)
	dial := func(suite uint16) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, s := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA} {
		if err := dial(s); err == nil {
			t.Errorf("TLS 1.2 with %s only: served, want refused", tls.CipherSuiteName(s))
		}
	}
	for _, s := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if err := dial(s); err != nil {
			t.Errorf("TLS 1.2 with %s: %v", tls.CipherSuiteName(s), err)
		}
	}
}

// A certificate outside its validity (expired, or not valid yet: a renewal dated by a clock ahead)
// is served, as it was, but said so at start and at its reload: the node had logged "api listening
// tls=true", every client failed with "certificate has expired", and all the node's log said was
// "TLS handshake error …: remote error: tls: bad certificate".
func TestAPITLSCertificateOutsideItsValidityIsLogged(t *testing.T) {
	dir := tempDir(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	expired := time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC)
	writeCertValid(t, certFile, keyFile, 1, expired.AddDate(0, -1, 0), expired)
	var logs lockedBuffer
	a := &app{cfg: Default(), log: slog.New(slog.NewTextHandler(&logs, nil))}
	a.cfg.API.TLSCert, a.cfg.API.TLSKey = certFile, keyFile
	ln := serveTLS(t, a)
	if want := `level=WARN msg="api.tls_cert is expired: clients refuse it" cert=` + certFile + ` not_after=2020-02-01T00:00:00.000Z`; !strings.Contains(logs.String(), want) {
		t.Errorf("at start, logs:\n%s\nwant %q", logs.String(), want)
	}
	later := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	writeCertValid(t, certFile, keyFile, 2, later, later.Add(time.Hour))
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if want := `msg="api.tls_cert is not valid yet: clients refuse it (is this node's clock, or the issuer's, wrong?)" cert=` + certFile + ` not_before=` + later.Format("2006-01-02T15:04:05.000Z"); !strings.Contains(logs.String(), want) {
		t.Errorf("after a reload, logs:\n%s\nwant %q", logs.String(), want)
	}
}

// Every topic a node reads is created compression.type=uncompressed, so that max.message.bytes
// bounds what a batch inflates to in the nodes reading it: a zstd batch of a few kilobytes holding
// 300 MB, produced to the lists topic (created under the default compression.type=producer), took
// a running node from 0.17 to 1.6 GB — and every node reads that compacted topic from its start
// at each restart. The dead-letter topic, which no node reads, keeps the default.
func TestTopicsNodesReadAreCreatedUncompressed(t *testing.T) {
	a := &app{cfg: Default()}
	k := a.cfg.Kafka
	read := map[string]bool{k.EventsTopic: true, k.ScoresTopic: true, k.DecisionsTopic: true, k.ListsTopic: true}
	for _, spec := range a.topics() {
		if got := spec.Configs["compression.type"]; read[spec.Name] != (got == consumers.InputTopicCompression) {
			t.Errorf("%s: compression.type %q", spec.Name, got)
		}
		delete(read, spec.Name)
		if spec.Name == k.ListsTopic && spec.Configs["cleanup.policy"] != "compact" {
			t.Errorf("%s: cleanup.policy %q, want compact", spec.Name, spec.Configs["cleanup.policy"])
		}
	}
	if len(read) > 0 {
		t.Errorf("not created: %v", read)
	}
}

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A connection that opens and closes without a TLS handshake (a load balancer's TCP probe, a
// port scan) made net/http log a warning each: 50 probes, 50 lines. The API server logs the first
// of a kind, then at most one a minute saying how many were held back.
func TestTLSHandshakeFailuresAreNotLoggedEach(t *testing.T) {
	dir := tempDir(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	var logs lockedBuffer
	a := &app{cfg: Default(), log: slog.New(slog.NewTextHandler(&logs, nil)), reg: prometheus.NewRegistry(), health: &health{}}
	a.cfg.API.TLSCert, a.cfg.API.TLSKey = certFile, keyFile
	ln, err := a.listenAPI("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := a.serveStarting(ln)
	t.Cleanup(s.close)
	const probes = 50
	for range probes {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); s.errs.lines.Load() < probes; {
		if time.Now().After(deadline) {
			t.Fatalf("the server wrote %d error lines for %d probes", s.errs.lines.Load(), probes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "TLS handshake error"); n != 1 {
		t.Errorf("%d lines about failed handshakes for %d probes, want 1:\n%s", n, probes, logs.String())
	}

	// A minute on, the next one is logged with the count held back; another kind (another reason
	// for a failed handshake too) is logged at once.
	now := time.Now()
	var out lockedBuffer
	e := newServerErrors(slog.New(slog.NewTextHandler(&out, nil)))
	e.now = func() time.Time { return now }
	for range 3 {
		fmt.Fprintf(e, "http: TLS handshake error from 10.0.0.7:51234: EOF\n")
	}
	fmt.Fprintf(e, "http: Accept error: accept tcp: too many open files; retrying in 5ms\n")
	fmt.Fprintf(e, "http: Accept error: accept tcp: too many open files; retrying in 10ms\n")
	fmt.Fprintf(e, "http: TLS handshake error from [fe80::1]:5555: remote error: tls: bad certificate\n")
	for port := range 3 {
		fmt.Fprintf(e, "http: panic serving 10.0.0.9:%d: boom\ngoroutine 1 [running]:\n", 40000+port)
	}
	now = now.Add(serverErrorEvery)
	fmt.Fprintf(e, "http: TLS handshake error from 10.0.0.8:40000: EOF\n")
	got := out.String()
	if strings.Count(got, "TLS handshake error") != 3 || strings.Count(got, "bad certificate") != 1 || !strings.Contains(got, "like_it_not_logged=2") ||
		strings.Count(got, "Accept error") != 1 ||
		strings.Count(got, "panic serving") != 1 {
		t.Errorf("logged:\n%s", got)
	}
}

// A client's pooled connection is closed by the first answer after api.max_conn_age
// (Connection: close), and its next request opens a new one — which a layer-4 balancer may send
// to a node added since; before it, a verify service's connections stayed on the nodes they were
// opened to for as long as it kept them busy. Younger connections are kept, and 0 keeps them all.
func TestConnectionsOlderThanMaxAgeAreClosed(t *testing.T) {
	for _, c := range []struct {
		maxAge    time.Duration
		wantConns int
	}{{time.Minute, 2}, {0, 1}} {
		var mu sync.Mutex
		now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		var opened atomic.Int32
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
		srv := httptest.NewUnstartedServer(closeAged(ok, c.maxAge, clock))
		srv.Config.ConnContext = connBorn(clock)
		srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				opened.Add(1)
			}
		}
		srv.Start()
		get := func() *http.Response {
			t.Helper()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		for range 3 {
			if resp := get(); resp.Close {
				t.Errorf("max age %s: a young connection was closed", c.maxAge)
			}
		}
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		if resp := get(); resp.Close != (c.maxAge > 0) {
			t.Errorf("max age %s: the answer on a 2-minute-old connection closes it: %v", c.maxAge, resp.Close)
		}
		get()
		if n := int(opened.Load()); n != c.wantConns {
			t.Errorf("max age %s: %d connections opened for 5 requests, want %d", c.maxAge, n, c.wantConns)
		}
		srv.Close()
	}
}

// `riskflow dev` with api.tls_cert set runs its sample over TLS against its own node, trusting the
// certificate the node serves (here for "localhost" only, from no known issuer, at 127.0.0.1): it
// posted http:// to its own TLS node and stopped on "400 Bad Request: Client sent an HTTP request
// to an HTTPS server".
func TestDevSampleOverTLS(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	r := runCmd(t, context.Background(), "dev", "--once", "--listen", "127.0.0.1:0",
		"--set", "api.tls_cert="+certFile, "--set", "api.tls_key="+keyFile, "--set", "log.level=warn")
	if r.code != 0 || !strings.Contains(r.stdout, "riskflow dev served https://127.0.0.1:") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// selfClient trusts api.tls_cert's certificate only: another one, even at the same address, is
// refused.
func TestSelfClientTrustsOnlyTheNodesCertificate(t *testing.T) {
	dir := tempDir(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // its own certificate
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	cfg := Default()
	cfg.API.TLSCert, cfg.API.TLSKey = certFile, keyFile
	if resp, err := selfClient(cfg).Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("selfClient accepted a certificate other than api.tls_cert's")
	} else if !strings.Contains(err.Error(), "another certificate than api.tls_cert's") {
		t.Errorf("err = %v", err)
	}
}

// A key pair that does not load says what is wrong and names the files: an encrypted key had got
// "tls: failed to parse private key", a chain written intermediate first "tls: private key does
// not match public key".
func TestAPITLSKeyPairErrorsSayWhatIsWrong(t *testing.T) {
	dir := tempDir(t)
	certA, keyA := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	certB, keyB := filepath.Join(dir, "b.crt"), filepath.Join(dir, "b.key")
	writeCert(t, certA, keyA, 1)
	writeCert(t, certB, keyB, 2)
	read := func(f string) []byte {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	chain := filepath.Join(dir, "chain.crt") // another certificate first, then the key's
	encrypted := filepath.Join(dir, "enc.key")
	for f, b := range map[string][]byte{
		chain:     append(read(certB), read(certA)...),
		encrypted: pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("0123456789abcdef")}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ cert, key, want string }{
		{certA, encrypted, "api.tls_key " + encrypted + " is encrypted"},
		{chain, keyA, "api.tls_key " + keyA + " is the key of certificate 2 of api.tls_cert " + chain + ", not of its first: the server's certificate goes first"},
		{certA, keyB, "api.tls_key " + keyB + " is not the key of api.tls_cert " + certA},
	} {
		a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler)}
		a.cfg.API.TLSCert, a.cfg.API.TLSKey = c.cert, c.key
		ln, err := a.listenAPI("127.0.0.1:0")
		if err == nil {
			ln.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("cert %s, key %s: %v, want %q", filepath.Base(c.cert), filepath.Base(c.key), err, c.want)
		}
	}
}

// An answer of the node that does not decode as the live state (another service on that port, a
// later version) is named by its member, not with encoding/json's "Go struct field
// ExplainResponse.Explanation.subject of type string".
func TestLookupNamesTheMemberOfAnUnreadableAnswer(t *testing.T) {
	for body, want := range map[string]string{
		`{"code":0,"content":"live state","subject":5}`:      "subject: must be a string, got number",
		`{"code":0,"content":"live state","windows":{}}`:     "windows: must be an array, got object",
		`{"code":0,"content":"live state","at":"yesterday"}`: `at: "yesterday" is not an RFC 3339 time`,
		`[{"code":0}]`: "expected a JSON object, got array",
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		_, err := explainOver(context.Background(), srv.URL, "lead", "s3cret", api.ExplainRequest{IP: "1.2.3.4"})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go ") {
			t.Errorf("answer %s: %v, want %q", body, err, want)
		}
	}
}

// lookup against a TLS node whose certificate it does not take says how to make it: a private
// CA's (SSL_CERT_FILE), one for another name (--api with that name). It had said only "x509:
// certificate signed by unknown authority".
func TestLookupSaysHowToReachAPrivateCAsNode(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // a certificate from no known issuer
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	_, err := explainOver(context.Background(), srv.URL, "lead", "s3cret", api.ExplainRequest{IP: "1.2.3.4"})
	if err == nil || !strings.Contains(err.Error(), "SSL_CERT_FILE=ca.pem") {
		t.Errorf("explainOver = %v, want the SSL_CERT_FILE hint", err)
	}
	if got := tlsHint(fmt.Errorf("wrapped: %w", x509.HostnameError{Host: "127.0.0.1", Certificate: &x509.Certificate{}})); !strings.Contains(got, "--api https://NAME:PORT") {
		t.Errorf("tlsHint(HostnameError) = %q", got)
	}
}
