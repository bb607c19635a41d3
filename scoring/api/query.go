package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/riskflow/riskflow/schemas"
)

// Query returns r's query parameters, every one of them among known, or a *schemas.FieldError
// naming the first that is not, or that cannot be read. url.URL.Query drops a pair it cannot read
// without a word — one holding a ';' ("exclude=fresh;x") or a malformed escape ("exclude=%zz") —
// and a parameter no route reads is ignored as silently ("exlude=fresh"): a load balancer probing
// /readyz?exclude=fresh; counted the check it meant to leave out, answered "ready" until the first
// broker outage took every node out of rotation, where the name alone mistyped is a 400 at once.
func Query(r *http.Request, known ...string) (url.Values, error) {
	vals := url.Values{}
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		if strings.Contains(pair, ";") {
			return nil, &schemas.FieldError{Field: queryName(rawKey), Reason: "holds a ';': separate query parameters with '&'"}
		}
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, &schemas.FieldError{Field: "query", Reason: "parameter name " + schemas.Excerpt(rawKey, 40) + " is not valid percent-encoding"}
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, &schemas.FieldError{Field: queryName(key), Reason: schemas.Excerpt(rawValue, 40) + " is not valid percent-encoding"}
		}
		if !slices.Contains(known, key) {
			takes := "takes no query parameter"
			if len(known) > 0 {
				takes = "takes " + strings.Join(known, ", ")
			}
			return nil, &schemas.FieldError{Field: queryName(key), Reason: "unknown query parameter (" + r.URL.Path + " " + takes + ")"}
		}
		vals.Add(key, value)
	}
	return vals, nil
}

// queryName is a query parameter's name as an error shows it ("" shows as "").
func queryName(name string) string { return schemas.ShowName(name, 40) }

// noQuery refuses any query parameter, as Query does one it does not know, on a route that
// documents none: a parameter was ignored without a word (POST /v1/risk/check?dry_run=1 scored
// and recorded the login all the same), where the ops port's routes refused it.
func noQuery(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil // every check a client sends: nothing to parse, nothing allocated
	}
	_, err := Query(r)
	return err
}
