package authflow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/idp/oidc"
)

// FuzzFederatedCallback checks the property: a federated callback whose
// state mcpgate did not seal for this provider and this browser (garbled,
// truncated, expired, sealed for another purpose, another provider or
// another browser) never panics, never signs anyone in, never redirects and
// never reaches the IdP (the provider here is unreachable: any attempt to
// redeem the code would show as a 403 instead of 400).
func FuzzFederatedCallback(f *testing.F) {
	p, err := oidc.New(context.Background(), oidc.Config{Name: "t", Issuer: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "http://127.0.0.1:2/oauth/callback/t"})
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Options{Issuer: "http://127.0.0.1:2", Store: noStore{}, Federation: &Federation{Providers: map[string]*oidc.Provider{"t": p}}})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	// Seeds: states that open but must still be refused.
	otherBrowser, _ := h.fedStates.Seal(fedState{Provider: "t", Nonce: "n", Verifier: "v", Browser: "another browser"}, fedTTL, "t")
	unbound, _ := h.fedStates.Seal(fedState{Provider: "t", Nonce: "n", Verifier: "v"}, fedTTL, "t")
	otherProvider, _ := h.fedStates.Seal(fedState{Provider: "u", Nonce: "n", Verifier: "v"}, fedTTL, "u")
	otherPurpose, _ := h.requests.Seal(request{ClientID: "c"}, requestTTL, "")
	// Bound to the seed cookie below, but sealed an hour ago: expired.
	seedCookie := httptest.NewRequest(http.MethodGet, "/", nil)
	seedCookie.AddCookie(&http.Cookie{Name: h.csrf.CookieName(), Value: "0123456789abcdefghijklmnop"})
	hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	expired, _ := h.fedStates.WithClock(hourAgo).Seal(fedState{Provider: "t", Nonce: "n", Verifier: "v", Browser: h.csrf.Binding(seedCookie, fedBinding)}, fedTTL, "t")
	for _, s := range []string{otherBrowser, unbound, otherProvider, otherPurpose, expired, "", "garbage", otherBrowser[:len(otherBrowser)-2]} {
		f.Add(s, "code", "", "0123456789abcdefghijklmnop")
	}
	f.Add(unbound, "code", "access_denied", "")
	f.Fuzz(func(t *testing.T, state, code, idpErr, cookie string) {
		q := url.Values{"state": {state}, "code": {code}}
		if idpErr != "" {
			q.Set("error", idpErr)
		}
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:2/oauth/callback/t?"+q.Encode(), nil)
		if c := (&http.Cookie{Name: h.csrf.CookieName(), Value: cookie}); c.Valid() == nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("callback answered %d, want 400", w.Code)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == h.cookieName() {
				t.Fatal("a refused callback set the sign-in cookie")
			}
		}
	})
}
