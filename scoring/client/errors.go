package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/riskflow/riskflow/schemas"
)

var (
	// ErrBreakerOpen is the cause of an *UnavailableError when the circuit breaker refused the call:
	// it is open, or half-open with its probes already in flight. No request was sent.
	ErrBreakerOpen = errors.New("circuit breaker open: risk check not attempted")

	// ErrBadResponse is the cause of an *UnavailableError when riskflow answered with something the
	// client cannot use: an unexpected status, a body that is not a RiskCheck (code 0, content
	// "success", an id: JSON such as `{}` from a proxy is none), a score that is not
	// one of the four levels, or a body over MaxResponseBytes.
	ErrBadResponse = errors.New("unusable response from riskflow")
)

// UnavailableError reports that riskflow gave no verdict. Check returns it together with the
// fail-policy verdict (or a zero verdict under FailClosed). The chain through Cause lets callers
// tell the cases apart: errors.Is(err, ErrBreakerOpen), errors.Is(err, context.DeadlineExceeded),
// errors.Is(err, ErrBadResponse), or errors.As(err, &apiErr) for a 5xx, 408 or 429 answer.
type UnavailableError struct {
	// Reason is a short, fixed explanation; it is also the verdict's detail reason.
	Reason string
	// Cause is the underlying error.
	Cause error
}

func (e *UnavailableError) Error() string {
	if e.Cause == nil {
		return "riskflow unavailable: " + e.Reason
	}
	return "riskflow unavailable: " + e.Cause.Error()
}

// Unwrap returns Cause.
func (e *UnavailableError) Unwrap() error { return e.Cause }

// APIError is a non-2xx answer from riskflow with its {"code","content"} body. Check returns it on
// its own (no verdict) for a 4xx answer, which means the request was wrong; for a 5xx, 408 or 429
// answer it is the Cause of an *UnavailableError instead — so errors.As finds an APIError in an
// outage too: test for *UnavailableError first to tell "riskflow cannot answer" (a fail-policy
// verdict) from "the request is wrong" (none).
type APIError struct {
	Status  int    // HTTP status code
	Code    int    // the body's non-zero code; 0 if the body was not the API's error object
	Content string // what is wrong and which field; phone numbers in it are masked
	// RetryAfter is the wait the server asked for before the request is sent again (its
	// Retry-After header, which every 429 and 503 carries); 0 when it asked for none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("riskflow: HTTP %d: %s", e.Status, e.Content)
	}
	return fmt.Sprintf("riskflow: HTTP %d: %s (code %d)", e.Status, e.Content, e.Code)
}

// transient reports whether the status means riskflow cannot answer now, rather than that the
// request is wrong. Only transient errors count against the breaker and get a fail-policy verdict.
func (e *APIError) transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// newAPIError builds an APIError from an error answer's body, masking the request's phone number
// (and anything else that looks like one) in the content.
func newAPIError(status int, h http.Header, body []byte, phone string) *APIError {
	e := &APIError{Status: status, Content: http.StatusText(status)}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var eb schemas.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Content != "" {
		e.Code, e.Content = eb.Code, maskPhones(eb.Content, phone)
	} else if line := plainLine(h, body); line != "" {
		// Not the API's error object: what the server or a proxy in front said, in one line —
		// "Client sent an HTTP request to an HTTPS server." to a base URL of http:// for a node
		// serving TLS, where the error had said only "HTTP 400: Bad Request" (a request riskflow
		// found wrong, each check's).
		e.Content = maskPhones(line, phone)
	}
	return e
}

// plainLine is the first line of a text/plain body (or one without a Content-Type: Go's answer to
// plain HTTP on a TLS port has none), at most 200 bytes; "" for any other body.
func plainLine(h http.Header, body []byte) string {
	if ct := h.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/plain") {
		return ""
	}
	line, _, _ := strings.Cut(string(body), "\n")
	if strings.HasPrefix(strings.TrimSpace(line), "<") {
		return "" // markup, whatever its Content-Type says: the status text says more
	}
	if len(line) > 200 {
		line = line[:200]
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(line, "")))
}

// callerEnded marks a failure that happened because the caller's own context ended (canceled, or
// its deadline passed before the client's timeout). The breaker does not count such calls.
type callerEnded struct{ err error }

func (e *callerEnded) Error() string { return e.err.Error() }
func (e *callerEnded) Unwrap() error { return e.err }

// callerDeadline marks a call ended by the caller's deadline after riskflow had at least
// FairBudget to answer: the breaker counts it as the timeout it is.
type callerDeadline struct{ err error }

func (e *callerDeadline) Error() string { return e.err.Error() }
func (e *callerDeadline) Unwrap() error { return e.err }

// reason gives the fixed, phone-free text of a verdict's risk_unavailable detail.
func (c *Client) reason(cause error) string {
	var (
		ce  *callerEnded
		cd  *callerDeadline
		api *APIError
	)
	switch {
	case errors.Is(cause, ErrBreakerOpen):
		return "risk check skipped: circuit breaker open after repeated riskflow failures"
	case errors.As(cause, &ce) && errors.Is(cause, context.Canceled):
		return "risk check canceled by the caller"
	case errors.As(cause, &ce), errors.As(cause, &cd):
		return "caller's deadline passed before riskflow answered"
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Sprintf("riskflow did not answer within %s", c.timeout)
	case errors.As(cause, &api):
		return fmt.Sprintf("riskflow answered HTTP %d", api.Status)
	case errors.Is(cause, ErrBadResponse):
		return "riskflow sent an unusable response"
	default:
		return "cannot reach riskflow"
	}
}

// minMaskedDigits is the shortest run of digits that maskPhones treats as a phone number: short
// enough to catch a mistyped 11-digit number, long enough to leave sizes and counts readable.
const minMaskedDigits = 9

// maskPhones replaces phone (as the caller sent it) and every run of minMaskedDigits or more
// digits in s with the masked form 1381234****, then every other phone-like number — spaced,
// dashed, full-width, +86 in front: the forms schemas.MaskPhones knows — with <phone>. The digit
// runs alone let "138 0013 8000" through, as a proxy in front of riskflow may echo it.
func maskPhones(s, phone string) string {
	return schemas.MaskPhones(maskDigitRuns(s, phone))
}

func maskDigitRuns(s, phone string) string {
	if phone != "" {
		s = strings.ReplaceAll(s, phone, schemas.MaskPhone(phone))
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		switch {
		case j-i >= minMaskedDigits:
			b.WriteString(schemas.MaskPhone(s[i:j]))
			i = j
		case j > i:
			b.WriteString(s[i:j])
			i = j
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}
