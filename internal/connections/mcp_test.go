package connections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/vault"
)

func newMCPManager(t *testing.T, perTenant bool) (*Manager, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, _ := vault.GenerateKey()
	v, _ := vault.New(key)
	m := New([]Provider{{Name: "notes", PerTenant: perTenant, MCP: &MCPUpstream{URL: "https://notes.example/mcp",
		Pre: &mcpoauth.PreRegistered{ClientID: "gw", ClientSecret: "gw-secret"}}}}, st, v, "https://gw.example", nil)
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	m.EnableMCP(MCPOptions{Guard: mcpoauth.NewHTTPClient(mcpoauth.GuardOptions{Allow: loop, AllowHTTP: true}), AllowHTTP: true})
	return m, st
}

// putMCP stores an mcp-oauth connection for alice.
func putMCP(t *testing.T, m *Manager, st *sqlite.Store, tenant string, sec secret, expires time.Time) {
	t.Helper()
	rec := store.Connection{UserID: "alice", Tenant: tenant, Name: "notes", Kind: store.ConnectionOAuth2, ExpiresAt: expires}
	if err := m.reseal(&rec, sec); err != nil {
		t.Fatal(err)
	}
	if err := st.PutConnection(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

func binding(tokenURL string, scopes ...string) *mcpoauth.Binding {
	return &mcpoauth.Binding{Issuer: "https://as.example", TokenEndpoint: tokenURL, Resource: "https://notes.example/mcp",
		Scopes: scopes, ClientKind: mcpoauth.KindPreRegistered, ClientID: "gw", AuthMethod: mcpoauth.AuthBasic}
}

func challenge(v string) http.Header {
	h := http.Header{}
	h.Set("WWW-Authenticate", v)
	return h
}

// TestStepUpBounded: a 403 insufficient_scope for a new scope asks the
// user to allow more, once; the same demand again (or one for what was
// asked already) ends with a final answer, not another round.
func TestStepUpBounded(t *testing.T) {
	m, st := newMCPManager(t, false)
	ctx := context.Background()
	putMCP(t, m, st, "", secret{AccessToken: "at", Binding: binding("http://unused", "read")}, time.Time{})
	err := m.Refused(ctx, "alice", "", "notes", http.StatusForbidden, challenge(`Bearer error="insufficient_scope", scope="write"`))
	var nc *ErrNotConnected
	if !errors.As(err, &nc) || nc.MorePermission != "write" {
		t.Fatalf("first 403: %v, want a step-up", err)
	}
	rec, _ := st.GetConnection(ctx, "alice", "", "notes")
	sec, _ := m.open(rec)
	if !slices.Equal(sec.Want, []string{"read", "write"}) || sec.StepUps != 1 {
		t.Fatalf("after step-up: want %v step-ups %d", sec.Want, sec.StepUps)
	}
	for _, sc := range []string{"write", "read"} {
		err = m.Refused(ctx, "alice", "", "notes", http.StatusForbidden, challenge(`Bearer error="insufficient_scope", scope="`+sc+`"`))
		var is *ErrInsufficientScope
		if !errors.As(err, &is) {
			t.Fatalf("403 for %s again: %v, want a final refusal", sc, err)
		}
	}
	// A 403 that is not about scope is not authorization's business.
	if err := m.Refused(ctx, "alice", "", "notes", http.StatusForbidden, http.Header{}); err != nil {
		t.Fatalf("plain 403: %v", err)
	}
}

// TestStepUpLimit: a server inventing a new scope every time stops
// getting step-ups after maxStepUps.
func TestStepUpLimit(t *testing.T) {
	m, st := newMCPManager(t, false)
	ctx := context.Background()
	putMCP(t, m, st, "", secret{AccessToken: "at", Binding: binding("http://unused")}, time.Time{})
	steps := 0
	for i := range 10 {
		err := m.Refused(ctx, "alice", "", "notes", http.StatusForbidden, challenge(`Bearer error="insufficient_scope", scope="s`+string(rune('a'+i))+`"`))
		var nc *ErrNotConnected
		if errors.As(err, &nc) {
			steps++
		}
	}
	if steps != maxStepUps {
		t.Fatalf("%d step-ups, want %d", steps, maxStepUps)
	}
	// Reconnecting (what each step-up leads to) keeps the count...
	rec := store.Connection{UserID: "alice", Name: "notes"}
	if err := m.sealMCP(ctx, &rec, &mcpoauth.Token{AccessToken: "again"}, *binding("http://unused")); err != nil {
		t.Fatal(err)
	}
	if err := st.PutConnection(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var is *ErrInsufficientScope
	if err := m.Refused(ctx, "alice", "", "notes", http.StatusForbidden, challenge(`Bearer error="insufficient_scope", scope="fresh"`)); !errors.As(err, &is) {
		t.Fatalf("after reconnecting: %v, want the bound to hold", err)
	}
	// ... until the window has passed.
	m.now = func() time.Time { return time.Now().Add(stepUpWindow + time.Hour) }
	var nc *ErrNotConnected
	if err := m.Refused(ctx, "alice", "", "notes", http.StatusForbidden, challenge(`Bearer error="insufficient_scope", scope="fresh"`)); !errors.As(err, &nc) {
		t.Fatalf("a day later: %v, want a step-up", err)
	}
}

// TestRefused401: the first 401 makes the next call refresh; a second one
// soon after forgets the tokens (the user connects again, which
// rediscovers the authorization server); without a refresh token the
// first one does.
func TestRefused401(t *testing.T) {
	var calls atomic.Int64
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"refreshed","token_type":"Bearer","expires_in":3600}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	ctx := context.Background()
	putMCP(t, m, st, "", secret{AccessToken: "at", RefreshToken: "rt", Binding: binding(as.URL)}, time.Now().Add(time.Hour))
	if tok, err := m.Token(ctx, "alice", "", "notes"); err != nil || tok != "at" {
		t.Fatalf("%q %v", tok, err)
	}
	var retry *ErrRetry
	if err := m.Refused(ctx, "alice", "", "notes", http.StatusUnauthorized, challenge(`Bearer error="invalid_token"`)); !errors.As(err, &retry) {
		t.Fatalf("first 401: %v, want retry", err)
	}
	if tok, err := m.Token(ctx, "alice", "", "notes"); err != nil || tok != "refreshed" || calls.Load() != 1 {
		t.Fatalf("after first 401: %q %v (%d refreshes)", tok, err, calls.Load())
	}
	var nc *ErrNotConnected
	if err := m.Refused(ctx, "alice", "", "notes", http.StatusUnauthorized, http.Header{}); !errors.As(err, &nc) {
		t.Fatalf("second 401: %v, want not connected", err)
	}
	if _, err := st.GetConnection(ctx, "alice", "", "notes"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tokens kept after a second 401: %v", err)
	}
	putMCP(t, m, st, "", secret{AccessToken: "at", Binding: binding(as.URL)}, time.Time{})
	if err := m.Refused(ctx, "alice", "", "notes", http.StatusUnauthorized, http.Header{}); !errors.As(err, &nc) {
		t.Fatalf("401 without refresh token: %v, want not connected", err)
	}
}

// TestMCPRefreshOnce: concurrent callers of an expiring mcp-oauth token
// make one refresh, at the recorded token endpoint, as the recorded
// client, naming the resource; a rotated refresh token replaces the old.
func TestMCPRefreshOnce(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	var forms []string
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		u, p, _ := r.BasicAuth()
		mu.Lock()
		forms = append(forms, r.PostForm.Get("resource")+"|"+r.PostForm.Get("refresh_token")+"|"+u+":"+p)
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new","refresh_token":"rt2","token_type":"Bearer","expires_in":3600,"scope":"read"}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	putMCP(t, m, st, "", secret{AccessToken: "old", RefreshToken: "rt1", Binding: binding(as.URL, "read")}, time.Now().Add(10*time.Second))
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := m.Token(context.Background(), "alice", "", "notes"); err != nil || tok != "new" {
				t.Errorf("%q %v", tok, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 || forms[0] != "https://notes.example/mcp|rt1|gw:gw-secret" {
		t.Fatalf("%d refreshes, requests %v", calls.Load(), forms)
	}
	rec, _ := st.GetConnection(context.Background(), "alice", "", "notes")
	sec, _ := m.open(rec)
	if sec.RefreshToken != "rt2" || sec.Binding == nil || sec.Binding.TokenEndpoint != as.URL {
		t.Fatalf("after refresh %+v", sec)
	}
}

// TestPerTenantConnections: a per-tenant provider keeps one connection
// per tenant of the user.
func TestPerTenantConnections(t *testing.T) {
	m, st := newMCPManager(t, true)
	ctx := context.Background()
	putMCP(t, m, st, "t1", secret{AccessToken: "for-t1", Binding: binding("http://unused")}, time.Time{})
	if tok, err := m.Token(ctx, "alice", "t1", "notes"); err != nil || tok != "for-t1" {
		t.Fatalf("t1: %q %v", tok, err)
	}
	var nc *ErrNotConnected
	if _, err := m.Token(ctx, "alice", "t2", "notes"); !errors.As(err, &nc) {
		t.Fatalf("t2: %v, want not connected", err)
	}
}

// TestRegistrationsSealed: dynamic registrations are kept in the vault,
// one row per issuer, the secret never in plaintext.
func TestRegistrationsSealed(t *testing.T) {
	m, st := newMCPManager(t, false)
	ctx := context.Background()
	r := &vaultRegistrations{m: m}
	want := mcpoauth.Registration{Issuer: "https://as.example", RedirectURI: "https://gw.example/connections/callback", ClientID: "c1", ClientSecret: "very-secret", AuthMethod: mcpoauth.AuthBasic}
	if err := r.PutRegistration(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.GetRegistration(ctx, "https://as.example")
	if err != nil || !ok || got != want {
		t.Fatalf("%+v %v %v", got, ok, err)
	}
	if _, ok, _ := r.GetRegistration(ctx, "https://other.example"); ok {
		t.Fatal("registration found for another issuer")
	}
	rec, err := st.GetConnection(ctx, "", "", registrationName("https://as.example"))
	if err != nil || rec.Kind != KindMCPClient || bytes.Contains(rec.Secret, []byte("very-secret")) {
		t.Fatalf("row %+v %v", rec.Kind, err)
	}
	var probe map[string]any
	if json.Unmarshal(rec.Secret, &probe) == nil {
		t.Fatal("registration stored as plain JSON")
	}
}

// TestMetadataDocument: mcpgate serves its client ID metadata document
// (its client_id is its own URL, the redirect is the connections
// callback) only when it has one.
func TestMetadataDocument(t *testing.T) {
	m, _ := newMCPManager(t, false)
	if m.MetadataDocument() != nil {
		t.Fatal("a document without a metadata URL")
	}
	m.EnableMCP(MCPOptions{MetadataURL: "https://gw.example/oauth/upstream-client.json"})
	rec := httptest.NewRecorder()
	m.MetadataDocument().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth/upstream-client.json", nil))
	var doc struct {
		ClientID     string   `json:"client_id"`
		RedirectURIs []string `json:"redirect_uris"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%v %q", err, rec.Header().Get("Content-Type"))
	}
	if doc.ClientID != "https://gw.example/oauth/upstream-client.json" || !slices.Equal(doc.RedirectURIs, []string{"https://gw.example/connections/callback"}) {
		t.Fatalf("document %+v", doc)
	}
}

// TestRefreshClientRefused: when the authorization server no longer
// knows mcpgate's registered client, the user is asked to connect again
// and the registration is dropped, so that connect registers anew.
func TestRefreshClientRefused(t *testing.T) {
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	ctx := context.Background()
	regs := &vaultRegistrations{m: m}
	_ = regs.PutRegistration(ctx, mcpoauth.Registration{Issuer: "https://as.example", RedirectURI: "https://gw.example/connections/callback",
		ClientID: "dyn", ClientSecret: "dyn-secret", AuthMethod: mcpoauth.AuthBasic})
	b := binding(as.URL)
	b.ClientKind, b.ClientID = mcpoauth.KindDynamic, "dyn"
	putMCP(t, m, st, "", secret{AccessToken: "at", RefreshToken: "rt", Binding: b}, time.Now().Add(10*time.Second))
	var nc *ErrNotConnected
	if _, err := m.Token(ctx, "alice", "", "notes"); !errors.As(err, &nc) {
		t.Fatalf("%v, want not connected", err)
	}
	if _, ok, _ := regs.GetRegistration(ctx, "https://as.example"); ok {
		t.Fatal("the refused registration is still kept")
	}
}

// TestRefreshDynamicClient: a refresh as a dynamically registered client
// authenticates with the kept registration's secret (read before the
// row is locked: SQLite has one connection).
func TestRefreshDynamicClient(t *testing.T) {
	var basic atomic.Value
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		basic.Store(u + ":" + p)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"fresh","token_type":"Bearer","expires_in":3600}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	ctx := context.Background()
	_ = (&vaultRegistrations{m: m}).PutRegistration(ctx, mcpoauth.Registration{Issuer: "https://as.example", RedirectURI: "https://gw.example/connections/callback",
		ClientID: "dyn", ClientSecret: "dyn-secret", AuthMethod: mcpoauth.AuthBasic})
	b := binding(as.URL)
	b.ClientKind, b.ClientID = mcpoauth.KindDynamic, "dyn"
	putMCP(t, m, st, "", secret{AccessToken: "at", RefreshToken: "rt", Binding: b}, time.Now().Add(10*time.Second))
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if tok, err := m.Token(tctx, "alice", "", "notes"); err != nil || tok != "fresh" || basic.Load() != "dyn:dyn-secret" {
		t.Fatalf("%q %v, authenticated as %v", tok, err, basic.Load())
	}
}

// TestTokenOnlyForItsUpstream: a stored connection is handed out only to
// the upstream its tokens were asked for. When the config moves the
// connection name to another URL (or the name once belonged to a plain
// provider), the old token must not reach the new upstream: the user
// connects again.
func TestTokenOnlyForItsUpstream(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		b    *mcpoauth.Binding
		ok   bool
	}{
		{"its own URL", binding("http://unused"), true},
		{"its origin (root metadata)", &mcpoauth.Binding{Resource: "https://notes.example"}, true},
		{"another upstream", &mcpoauth.Binding{Resource: "https://other.example/mcp"}, false},
		{"another path on the host", &mcpoauth.Binding{Resource: "https://notes.example/admin"}, false},
		{"a plain provider's row", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, st := newMCPManager(t, false)
			putMCP(t, m, st, "", secret{AccessToken: "at-" + tc.name, Binding: tc.b}, time.Time{})
			tok, err := m.Token(ctx, "alice", "", "notes")
			var nc *ErrNotConnected
			switch {
			case tc.ok && (err != nil || tok != "at-"+tc.name):
				t.Fatalf("Token = %q, %v; want the stored token", tok, err)
			case !tc.ok && (tok != "" || !errors.As(err, &nc)):
				t.Fatalf("Token = %q, %v; want not connected", tok, err)
			}
		})
	}
}

// TestPreRegisteredSecretPinned: once the config pins the pre-registered
// client to an issuer, a connection made at another issuer never gets
// its secret (a refresh there would hand it over): connect again.
func TestPreRegisteredSecretPinned(t *testing.T) {
	var got atomic.Value
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, p, _ := r.BasicAuth()
		_ = r.ParseForm()
		got.Store(p + r.PostForm.Get("client_secret"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new","token_type":"Bearer","expires_in":3600}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	m.providers[0].MCP.Pre.Issuer = "https://pinned.example"
	putMCP(t, m, st, "", secret{AccessToken: "old", RefreshToken: "rt1", Binding: binding(as.URL)}, time.Now().Add(10*time.Second))
	tok, err := m.Token(context.Background(), "alice", "", "notes")
	var nc *ErrNotConnected
	if !errors.As(err, &nc) || tok != "" {
		t.Fatalf("Token = %q, %v; want not connected", tok, err)
	}
	if s, _ := got.Load().(string); s != "" {
		t.Fatalf("the issuer %s got the secret %q", as.URL, s)
	}
}

// TestSlowRefreshDoesNotHoldTheStore: a token endpoint that takes its
// time (an upstream names its authorization server; it may be hostile)
// holds no store transaction: other writes (another user's connection
// here; sign-ins, codes and consents alike) go on meanwhile, and a second
// replica uses the current token instead of redeeming the refresh token
// again.
func TestSlowRefreshDoesNotHoldTheStore(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new","refresh_token":"rt2","token_type":"Bearer","expires_in":3600}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	putMCP(t, m, st, "", secret{AccessToken: "old", RefreshToken: "rt1", Binding: binding(as.URL)}, time.Now().Add(30*time.Second))
	got := make(chan string, 1)
	go func() {
		tok, err := m.Token(context.Background(), "alice", "", "notes")
		if err != nil {
			tok = err.Error()
		}
		got <- tok
	}()
	for calls.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	wrote := make(chan error, 1)
	go func() {
		wrote <- st.PutConnection(context.Background(), store.Connection{UserID: "bob", Name: "notes", Kind: store.ConnectionOAuth2, Secret: []byte("x")})
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		close(release)
		t.Fatal("a store write waited for another connection's token request")
	}
	// Another replica (another manager on the same store) does not
	// redeem rt1 again: the current token is still good.
	other := New(m.providers, st, m.vault, "https://gw.example", nil)
	other.EnableMCP(m.mcp.opts)
	if tok, err := other.Token(context.Background(), "alice", "", "notes"); err != nil || tok != "old" {
		t.Fatalf("second replica: %q %v, want the current token", tok, err)
	}
	close(release)
	if tok := <-got; tok != "new" {
		t.Fatalf("refreshing caller got %q", tok)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d token requests, want 1", calls.Load())
	}
	rec, _ := st.GetConnection(context.Background(), "alice", "", "notes")
	if sec, _ := m.open(rec); sec.RefreshToken != "rt2" || sec.Lease != "" {
		t.Fatalf("after refresh: refresh token %q lease %q", sec.RefreshToken, sec.Lease)
	}
}

// TestRefreshLease: while another replica's lease on the row lasts, an
// expired token is not refreshed again (the caller is asked to retry in a
// moment); a lease that ran out (its replica died) is taken over.
func TestRefreshLease(t *testing.T) {
	var calls atomic.Int64
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new","token_type":"Bearer","expires_in":3600}`))
	}))
	defer as.Close()
	m, st := newMCPManager(t, false)
	now := time.Now()
	putMCP(t, m, st, "", secret{AccessToken: "old", RefreshToken: "rt1", Binding: binding(as.URL), Lease: "other", LeaseUntil: now.Add(20 * time.Second)}, now.Add(-time.Second))
	tok, err := m.Token(context.Background(), "alice", "", "notes")
	var retry *ErrRetry
	if !errors.As(err, &retry) || !retry.Renewing || tok != "" || calls.Load() != 0 {
		t.Fatalf("under another lease: %q %v, %d token requests", tok, err, calls.Load())
	}
	putMCP(t, m, st, "", secret{AccessToken: "old", RefreshToken: "rt1", Binding: binding(as.URL), Lease: "dead", LeaseUntil: now.Add(-time.Second)}, now.Add(-time.Second))
	if tok, err := m.Token(context.Background(), "alice", "", "notes"); err != nil || tok != "new" || calls.Load() != 1 {
		t.Fatalf("after the lease ran out: %q %v, %d token requests", tok, err, calls.Load())
	}
}
