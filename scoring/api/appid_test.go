package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// An app_id that is not the key's but reads as it — é composed in one and as e and an accent in
// the other, a Cyrillic ѕ for s — is refused with both names' code points: the answer read
// `app_id: "café" is not the app of the authenticated key "café"`, which says nothing a person can
// act on.
func TestAnAppIDThatLooksLikeTheKeyIsShownByItsCodePoints(t *testing.T) {
	s := New(Config{Keys: map[string]string{"café": "s1", "shop": "s2"}}, nil, nil)
	for _, c := range []struct{ key, secret, appID, want string }{
		{"café", "s1", "cafe\u0301", `app_id: "cafe\u0301" is not the app of the authenticated key "caf\u00e9"`},
		{"shop", "s2", "\u0455hop", `app_id: "\u0455hop" is not the app of the authenticated key "shop"`},
		{"shop", "s2", "bank", `app_id: "bank" is not the app of the authenticated key "shop"`},
	} {
		r := httptest.NewRequest(http.MethodPost, "/v1/risk/check", strings.NewReader(`{"phone":"13812348000","ip":"1.1.1.1","app_id":"`+c.appID+`"}`))
		r.SetBasicAuth(c.key, c.secret)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var eb schemas.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || w.Code != http.StatusForbidden || eb.Content != c.want {
			t.Errorf("key %q, app_id %q: %d %s\nwant 403 %s", c.key, c.appID, w.Code, w.Body, c.want)
		}
	}
}
