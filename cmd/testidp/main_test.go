package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/testidp"
)

func TestConfigAndAdmin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	err := os.WriteFile(path, []byte(`
users:
  - username: alice
    password: alice-pw
    email: alice@tenant-a.example
    groups: [Schedulers]
clients:
  - id: mcpgate
    secret: s
    redirect_uris: [http://127.0.0.1:8080/oauth/callback/tenant-a]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Users) != 1 || cfg.Users[0].Groups[0] != "Schedulers" || cfg.Clients[0].RedirectURIs[0] == "" {
		t.Fatalf("config = %+v", cfg)
	}
	if err := os.WriteFile(path, []byte("users:\n  - usrname: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(path); err == nil {
		t.Error("unknown field accepted")
	}

	srv, err := testidp.New("http://127.0.0.1:9400", cfg.Users, cfg.Clients)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	admin(mux, srv, "tok")
	post := func(path, token string) int {
		req := httptest.NewRequest("POST", path, strings.NewReader(""))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/admin/users/alice/disable", "", http.StatusUnauthorized},
		{"/admin/users/alice/disable", "wrong", http.StatusUnauthorized},
		{"/admin/users/alice/disable", "tok", http.StatusNoContent},
		{"/admin/users/alice/enable", "tok", http.StatusNoContent},
		{"/admin/users/nobody/disable", "tok", http.StatusNotFound},
		{"/admin/rotate-key", "tok", http.StatusNoContent},
	} {
		if got := post(c.path, c.token); got != c.want {
			t.Errorf("POST %s (token %q) = %d, want %d", c.path, c.token, got, c.want)
		}
	}
}
