// Package httppath tells which request paths net/http's ServeMux routes as they are: it answers a
// path not in its clean form with a redirect to the clean one, whose Location and body repeat the
// caller's text (a phone number in it as sent), and which is neither the API's Error nor a
// console page.
package httppath

import "path"

// Clean is p as ServeMux cleans it before matching: rooted, no empty or dot segments, a trailing
// slash kept.
func Clean(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
