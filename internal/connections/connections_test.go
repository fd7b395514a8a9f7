package connections

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/vault"
)

func newTestManager(t *testing.T, tokenURL string) (*Manager, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, _ := vault.GenerateKey()
	v, _ := vault.New(key)
	m := New([]Provider{{Name: "cal", TokenURL: tokenURL, ClientID: "mcpgate", ClientSecret: "s3cret",
		ExtraParams: map[string]string{"resource": "https://cal.example/api"}}}, st, v, "http://gw", nil)
	return m, st
}

func store1(t *testing.T, m *Manager, st *sqlite.Store, sec secret, expires time.Time) {
	t.Helper()
	raw, _ := json.Marshal(sec)
	rec := store.Connection{UserID: "alice", Name: "cal", ExpiresAt: expires}
	if err := m.vault.SealConnection(&rec, raw); err != nil {
		t.Fatal(err)
	}
	if err := st.PutConnection(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// TestRefreshBeforeExpiry: a token about to expire is refreshed first,
// once even under concurrent callers, with the resource named (RFC 8707).
func TestRefreshBeforeExpiry(t *testing.T) {
	var calls atomic.Int64
	var gotResource, gotRefresh string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		gotResource, gotRefresh = r.PostForm.Get("resource"), r.PostForm.Get("refresh_token")
		if u, p, _ := r.BasicAuth(); u != "mcpgate" || p != "s3cret" {
			w.WriteHeader(401)
			return
		}
		time.Sleep(50 * time.Millisecond) // let concurrent callers pile up
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"new-access","refresh_token":"new-refresh","expires_in":3600,"token_type":"Bearer"}`))
	}))
	defer ts.Close()
	m, st := newTestManager(t, ts.URL)
	store1(t, m, st, secret{AccessToken: "old-access", RefreshToken: "old-refresh"}, time.Now().Add(20*time.Second))
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := m.Token(context.Background(), "alice", "", "cal")
			if err != nil {
				t.Error(err)
			}
			results[i] = tok
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r != "new-access" {
			t.Errorf("got %q, want the refreshed token", r)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("refresh requests = %d, want exactly 1 (one refresher at a time)", calls.Load())
	}
	if gotResource != "https://cal.example/api" || gotRefresh != "old-refresh" {
		t.Errorf("refresh request: resource %q, refresh_token %q", gotResource, gotRefresh)
	}
	rec, _ := st.GetConnection(context.Background(), "alice", "", "cal")
	if time.Until(rec.ExpiresAt) < 50*time.Minute {
		t.Errorf("stored expiry %v not updated", rec.ExpiresAt)
	}
}

// TestNotConnected: a missing connection, or a refresh the provider
// refuses, is an error that tells the user where to connect.
func TestNotConnected(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
	}))
	defer ts.Close()
	m, st := newTestManager(t, ts.URL)
	var nc *ErrNotConnected
	if _, err := m.Token(context.Background(), "alice", "", "cal"); !errors.As(err, &nc) || nc.ConnectURL != "http://gw/connections#cal" {
		t.Fatalf("not connected: %v", err)
	}
	store1(t, m, st, secret{AccessToken: "a", RefreshToken: "r"}, time.Now().Add(-time.Minute))
	if _, err := m.Token(context.Background(), "alice", "", "cal"); !errors.As(err, &nc) {
		t.Fatalf("refused refresh: %v", err)
	}
	if err := m.Disconnect(context.Background(), "alice", "", "cal"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetConnection(context.Background(), "alice", "", "cal"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after disconnect: %v", err)
	}
}

// TestPlainProviderRefusesMCPRow: a row an mcp-oauth upstream of the
// same name left behind (the config changed the name's meaning) is not
// handed to the plain provider's upstream.
func TestPlainProviderRefusesMCPRow(t *testing.T) {
	m, st := newTestManager(t, "http://unused")
	store1(t, m, st, secret{AccessToken: "notes-token", Binding: binding("http://unused")}, time.Time{})
	tok, err := m.Token(context.Background(), "alice", "", "cal")
	var nc *ErrNotConnected
	if tok != "" || !errors.As(err, &nc) {
		t.Fatalf("Token = %q, %v; want not connected", tok, err)
	}
}
