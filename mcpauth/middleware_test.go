package mcpauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcpgate/mcpgate/mcpauth"
)

const metadataURL = "https://gw.example.com/.well-known/oauth-protected-resource/mcp/tools"

func TestMiddleware(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now().Truncate(time.Second)
	v := mcpauth.NewVerifier(ti.URL(), testAudience, &mcpauth.Options{ResourceMetadataURL: metadataURL})
	expired := ti.claims(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	otherAud := ti.claims(now)
	otherAud["aud"] = "https://other.example.com/mcp"

	var got *mcpauth.Identity
	var gotInfo *auth.TokenInfo
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = mcpauth.FromContext(r.Context())
		gotInfo = auth.TokenInfoFromContext(r.Context())
		_, _ = io.WriteString(w, "ok")
	}))

	tests := []struct {
		name      string
		header    string
		status    int
		challenge string
	}{
		{"valid", "Bearer " + ti.sign(t, "k1", "at+jwt", ti.claims(now)), 200, ""},
		{"lower-case scheme", "bearer " + ti.sign(t, "k1", "at+jwt", ti.claims(now)), 200, ""},
		{"no header", "", 401, `Bearer resource_metadata="` + metadataURL + `"`},
		{"basic", "Basic YWxpY2U6cHc=", 401, `Bearer resource_metadata="` + metadataURL + `"`},
		{"expired", "Bearer " + ti.sign(t, "k1", "at+jwt", expired), 401,
			`Bearer error="invalid_token", error_description="token expired", resource_metadata="` + metadataURL + `"`},
		{"wrong audience", "Bearer " + ti.sign(t, "k1", "at+jwt", otherAud), 401,
			`Bearer error="invalid_token", error_description="token not meant for this resource", resource_metadata="` + metadataURL + `"`},
		{"garbage", "Bearer x.y.z", 401,
			`Bearer error="invalid_token", error_description="invalid token", resource_metadata="` + metadataURL + `"`},
		{"two tokens", "Bearer a b", 401,
			`Bearer error="invalid_token", error_description="invalid token", resource_metadata="` + metadataURL + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotInfo = nil, nil
			r := httptest.NewRequest("POST", "/mcp", strings.NewReader("{}"))
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if c := w.Header().Get("WWW-Authenticate"); c != tt.challenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", c, tt.challenge)
			}
			if tt.status != 200 {
				if got != nil {
					t.Error("handler ran")
				}
				return
			}
			if got == nil || got.Subject != "alice" || got.Actor != "agent-1" {
				t.Fatalf("identity in context: %+v", got)
			}
			if gotInfo == nil || gotInfo.UserID != "alice" || len(gotInfo.Scopes) != 2 || !gotInfo.Expiration.Equal(got.ExpiresAt) {
				t.Fatalf("SDK TokenInfo in context: %+v", gotInfo)
			}
		})
	}
}

func TestMiddlewareKeysUnavailable(t *testing.T) {
	ti := newTestIssuer(t)
	ti.setJWKSFail(true)
	v := mcpauth.NewVerifier(ti.URL(), testAudience, nil)
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler ran")
	}))
	r := httptest.NewRequest("POST", "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+ti.sign(t, "k1", "at+jwt", ti.claims(time.Now())))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "10" || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("status %d, headers %v; want 503 with Retry-After and no challenge", w.Code, w.Header())
	}
	if strings.Contains(w.Body.String(), ti.URL()) {
		t.Errorf("body leaks the JWKS URL: %s", w.Body)
	}
}

func TestTokenVerifier(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now()
	v := mcpauth.NewVerifier(ti.URL(), testAudience, nil)
	tv := v.TokenVerifier()

	info, err := tv(context.Background(), ti.sign(t, "k1", "at+jwt", ti.claims(now)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.UserID != "alice" || info.Scopes[0] != "tools:read" || info.Expiration.IsZero() {
		t.Errorf("TokenInfo %+v", info)
	}

	expired := ti.claims(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	_, err = tv(context.Background(), ti.sign(t, "k1", "at+jwt", expired), nil)
	if !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, mcpauth.ErrExpired) {
		t.Fatalf("expired: %v, want auth.ErrInvalidToken and ErrExpired", err)
	}
	if err.Error() != "invalid token: token expired" {
		t.Errorf("message %q shows more than the description", err)
	}

	// Through the SDK's middleware: 401, and the TokenInfo reaches the handler.
	var seen *mcpauth.Identity
	h := auth.RequireBearerToken(tv, &auth.RequireBearerTokenOptions{ResourceMetadataURL: metadataURL})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen, _ = mcpauth.FromContext(r.Context())
		}))
	for _, tc := range []struct {
		claims map[string]any
		status int
	}{{ti.claims(now), 200}, {expired, 401}} {
		r := httptest.NewRequest("POST", "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+ti.sign(t, "k1", "at+jwt", tc.claims))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("status %d, want %d", w.Code, tc.status)
		}
	}
	if seen == nil || seen.Subject != "alice" {
		t.Errorf("FromContext after auth.RequireBearerToken: %+v", seen)
	}
}
