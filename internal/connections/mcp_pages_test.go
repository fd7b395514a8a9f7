package connections

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/web"
)

// mcpWorld is an upstream MCP server with its own authorization server
// on one loopback server: a 401 naming its metadata, the metadata, and an
// authorization server that approves at once and answers the redirect
// with iss as issMode says ("right", "wrong", "none").
type mcpWorld struct {
	srv          *httptest.Server
	issMode      string
	noIssPromise bool                // metadata does not promise iss (RFC 9207)
	redirect     func(string) string // where the code goes, given redirect_uri (nil: there)
	registered   atomic.Value        // []any: redirect_uris of the last registration
	tokenCalls   atomic.Int64
	lastForm     atomic.Value // url.Values of the last token request
}

func newMCPWorld(t *testing.T) *mcpWorld {
	t.Helper()
	w := &mcpWorld{issMode: "right"}
	mux := http.NewServeMux()
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	js := func(rw http.ResponseWriter, v any) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(v)
	}
	mux.HandleFunc("POST /mcp", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("WWW-Authenticate", `Bearer scope="notes.read", resource_metadata="`+w.srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
		rw.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(rw http.ResponseWriter, r *http.Request) {
		js(rw, map[string]any{"resource": w.srv.URL + "/mcp", "authorization_servers": []string{w.srv.URL}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(rw http.ResponseWriter, r *http.Request) {
		js(rw, map[string]any{"issuer": w.srv.URL, "authorization_endpoint": w.srv.URL + "/authorize", "token_endpoint": w.srv.URL + "/token",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
			"authorization_response_iss_parameter_supported": !w.noIssPromise, "token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
			"registration_endpoint": w.srv.URL + "/register"})
	})
	mux.HandleFunc("POST /register", func(rw http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.registered.Store(body["redirect_uris"])
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(rw).Encode(map[string]any{"client_id": "dyn", "client_secret": "dyn-secret", "redirect_uris": body["redirect_uris"],
			"token_endpoint_auth_method": "client_secret_basic"})
	})
	mux.HandleFunc("GET /authorize", func(rw http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("redirect_uri")
		if w.redirect != nil {
			to = w.redirect(to)
		}
		back, _ := url.Parse(to)
		q := url.Values{"code": {"the-code"}, "state": {r.URL.Query().Get("state")}}
		switch w.issMode {
		case "right":
			q.Set("iss", w.srv.URL)
		case "wrong":
			q.Set("iss", "https://evil.example")
		}
		back.RawQuery = q.Encode()
		http.Redirect(rw, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(rw http.ResponseWriter, r *http.Request) {
		w.tokenCalls.Add(1)
		_ = r.ParseForm()
		w.lastForm.Store(r.PostForm)
		js(rw, map[string]any{"access_token": "notes-at", "refresh_token": "notes-rt", "token_type": "Bearer", "expires_in": 3600, "scope": "notes.read"})
	})
	return w
}

// TestMCPConnectFlow: connecting an mcp-oauth upstream from the page
// discovers its authorization server, asks for the challenge's scope and
// the resource, and stores the tokens only when the response's iss is
// the issuer's (RFC 9207).
func TestMCPConnectFlow(t *testing.T) {
	for _, tc := range []struct {
		iss       string
		connected bool
	}{{"right", true}, {"wrong", false}, {"none", false}} {
		t.Run("iss "+tc.iss, func(t *testing.T) {
			w := newMCPWorld(t)
			w.issMode = tc.iss
			m, st := newMCPManager(t, false)
			m.providers[0].MCP.URL = w.srv.URL + "/mcp"
			p, err := NewPages(m, func(r *http.Request) (store.User, bool) { return store.User{ID: "alice"}, true },
				web.NewCSRF([]byte("k"), false), []byte("secret"))
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			p.Mount(mux)
			gw := httptest.NewServer(mux)
			defer gw.Close()
			m.base = gw.URL // the callback the provider redirects to
			m.mcp.registrar.RedirectURI = gw.URL + "/connections/callback"
			browser := newJar()
			browser.CheckRedirect = nil // follow: provider → callback → page
			resp, err := browser.Get(gw.URL + "/connections")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			csrf := csrfFieldRE.FindStringSubmatch(string(page))
			resp, err = browser.PostForm(gw.URL+"/connections/notes/connect", url.Values{"csrf": {csrf[1]}})
			if err != nil {
				t.Fatal(err)
			}
			cont, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			link := continueLinkRE.FindStringSubmatch(string(cont))
			if link == nil {
				t.Fatalf("connect: %d %s", resp.StatusCode, cont)
			}
			authURL, _ := url.Parse(html.UnescapeString(link[1]))
			q := authURL.Query()
			if authURL.Path != "/authorize" || q.Get("client_id") != "gw" || q.Get("scope") != "notes.read" ||
				q.Get("resource") != w.srv.URL+"/mcp" || q.Get("code_challenge_method") != "S256" {
				t.Fatalf("authorization request %s", authURL)
			}
			resp, err = browser.Get(authURL.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			msg := resp.Request.URL.Query().Get("msg")
			_, err = st.GetConnection(context.Background(), "alice", "", "notes")
			if tc.connected {
				form, _ := w.lastForm.Load().(url.Values)
				if msg != "connected" || err != nil || form.Get("resource") != w.srv.URL+"/mcp" || form.Get("code_verifier") == "" {
					t.Fatalf("ended at %s (%v), token request %v", resp.Request.URL, err, form)
				}
				if tok, err := m.Token(context.Background(), "alice", "", "notes"); err != nil || tok != "notes-at" {
					t.Fatalf("token %q %v", tok, err)
				}
				return
			}
			if msg != "failed" || !errors.Is(err, store.ErrNotFound) || w.tokenCalls.Load() != 0 {
				t.Fatalf("iss %s: ended at %s, row err %v, %d token requests", tc.iss, resp.Request.URL, err, w.tokenCalls.Load())
			}
		})
	}
}

// TestMCPConnectUnreachable: an upstream whose authorization cannot be
// discovered gives a page saying so, not a redirect anywhere.
func TestMCPConnectUnreachable(t *testing.T) {
	m, _ := newMCPManager(t, false)
	m.providers[0].MCP.URL = "http://127.0.0.1:1/mcp"
	p, _ := NewPages(m, func(r *http.Request) (store.User, bool) { return store.User{ID: "alice"}, true }, web.NewCSRF([]byte("k"), false), []byte("s"))
	mux := http.NewServeMux()
	p.Mount(mux)
	gw := httptest.NewServer(mux)
	defer gw.Close()
	b := newJar()
	resp, _ := b.Get(gw.URL + "/connections")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp, err := b.PostForm(gw.URL+"/connections/notes/connect", url.Values{"csrf": {csrfFieldRE.FindStringSubmatch(string(page))[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "could not be reached") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestMCPMixUpRefused: with a dynamic registration, mcpgate's callback is
// the authorization server's own (per issuer), so a code that arrives at
// another callback — the shared one, or another issuer's: a hostile
// authorization server bouncing the browser to an honest one that sends
// no iss (RFC 9700 §4.4) — is never redeemed with this flow.
func TestMCPMixUpRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		redirect  func(gw string) func(string) string
		connected bool
	}{
		{"its own callback", nil, true},
		{"the shared callback", func(gw string) func(string) string {
			return func(string) string { return gw + "/connections/callback" }
		}, false},
		{"another issuer's callback", func(gw string) func(string) string {
			return func(string) string {
				return gw + "/connections/callback/" + mcpoauth.IssuerTag("https://other-as.example")
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newMCPWorld(t)
			w.issMode, w.noIssPromise = "none", true
			m, st := newMCPManager(t, false)
			m.providers[0].MCP.URL = w.srv.URL + "/mcp"
			m.providers[0].MCP.Pre = nil // dynamic registration
			p, err := NewPages(m, func(r *http.Request) (store.User, bool) { return store.User{ID: "alice"}, true },
				web.NewCSRF([]byte("k"), false), []byte("secret"))
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			p.Mount(mux)
			gw := httptest.NewServer(mux)
			defer gw.Close()
			m.base = gw.URL
			m.mcp.registrar.RedirectURI = gw.URL + "/connections/callback"
			if tc.redirect != nil {
				w.redirect = tc.redirect(gw.URL)
			}
			browser := newJar()
			browser.CheckRedirect = nil
			resp, err := browser.Get(gw.URL + "/connections")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp, err = browser.PostForm(gw.URL+"/connections/notes/connect", url.Values{"csrf": {csrfFieldRE.FindStringSubmatch(string(page))[1]}})
			if err != nil {
				t.Fatal(err)
			}
			cont, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			link := continueLinkRE.FindStringSubmatch(string(cont))
			if link == nil {
				t.Fatalf("connect: %d %s", resp.StatusCode, cont)
			}
			own := gw.URL + "/connections/callback/" + mcpoauth.IssuerTag(w.srv.URL)
			if regs, _ := w.registered.Load().([]any); len(regs) != 1 || regs[0] != own {
				t.Fatalf("registered redirect_uris %v, want [%s]", regs, own)
			}
			authURL, _ := url.Parse(html.UnescapeString(link[1]))
			if authURL.Query().Get("redirect_uri") != own {
				t.Fatalf("authorization request names %s", authURL.Query().Get("redirect_uri"))
			}
			resp, err = browser.Get(authURL.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			msg := resp.Request.URL.Query().Get("msg")
			_, err = st.GetConnection(context.Background(), "alice", "", "notes")
			if tc.connected {
				form, _ := w.lastForm.Load().(url.Values)
				if msg != "connected" || err != nil || form.Get("redirect_uri") != own {
					t.Fatalf("ended at %s (%v), token request %v", resp.Request.URL, err, form)
				}
				return
			}
			if msg != "failed" || !errors.Is(err, store.ErrNotFound) || w.tokenCalls.Load() != 0 {
				t.Fatalf("ended at %s, row err %v, %d token requests", resp.Request.URL, err, w.tokenCalls.Load())
			}
		})
	}
}
