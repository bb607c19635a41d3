// Package client is the Go client that verify services use to ask riskflow for a verdict
// (POST /v1/risk/check) from inside their loginTokenVerify handler, and to put that verdict in the
// response's riskCheck object.
//
// # The fail-open contract
//
// riskflow must never make a login hang or fail because riskflow itself is slow or down. So:
//
//   - Every Check is bounded by the caller's context and by the client's own per-call timeout
//     (DefaultTimeout, 50 ms, see WithTimeout), whichever ends first. The client makes no retries of its own,
//     except one net/http makes within that bound: a request that went out on a pooled connection
//     the server had closed (a restarted node, one shedding connections over api.max_conns) is sent
//     again on a new connection, since the lost connection says nothing of riskflow's health.
//   - A circuit breaker wraps the calls. After a run of consecutive failures (timeouts, connection
//     errors, malformed answers, HTTP 5xx, 408 and 429) it opens, and while it is open Check returns
//     at once without touching the network. After a pause it lets one probe through (half-open);
//     a successful probe closes it again. See WithBreakerSettings.
//   - When riskflow cannot answer, Check returns a verdict chosen by the FailPolicy together with a
//     non-nil *UnavailableError the caller should log. The default policy, FailOpen, returns
//     score 0 (pass) with the tag "risk_unavailable" and a reason, so the login goes ahead.
//     FailWithScore returns another level instead (600 sends the user to SMS); FailClosed returns
//     the error and a zero verdict and leaves the decision to the caller.
//   - A 4xx answer other than 408 and 429 means the request itself is wrong (400 bad field, 401 bad
//     credentials, 413 too large). It is not an outage: Check returns an *APIError and no verdict
//     whatever the policy, and the breaker does not count it as a failure.
//   - If the caller's context ends first (the login request went away, or the caller's own budget
//     ran out before riskflow had FairBudget, 10 ms, to answer), the call is not held against
//     riskflow: the breaker ignores it. A caller's deadline that gave riskflow at least FairBudget
//     counts as a timeout, so that a hung riskflow opens the breaker for callers passing their
//     own budgets too.
//
// The usual handler therefore reads (UnavailableError first: a 5xx, 408 or 429 answer is an
// *APIError in its chain as well, and tested first it would send an outage down the bad-request
// branch, without the fail-policy verdict):
//
//	rc, err := risk.Check(ctx, req)
//	var unavailable *client.UnavailableError
//	switch {
//	case errors.As(err, &unavailable):
//		log.Warn("risk check unavailable", "err", err) // rc is the fail-policy verdict
//	case err != nil:
//		// an *client.APIError: riskflow refused the request (4xx); fix it, decide without a verdict
//	}
//	resp.RiskCheck = rc
//
// Errors and log lines from this package never carry a plaintext phone number: phone numbers that
// riskflow echoes back in an error message are masked (1381234****).
package client
