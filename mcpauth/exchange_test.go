package mcpauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"

	"github.com/mcpgate/mcpgate/mcpauth"
)

func TestExchange(t *testing.T) {
	var form url.Values
	var user, pass string
	var basic bool
	status, body := http.StatusOK, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		_ = r.ParseForm()
		form = r.PostForm
		user, pass, basic = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	ctx := context.Background()
	client := mcpauth.ClientCredentials{ID: "svc:tools", Secret: "s3cr&t"}

	t.Run("success", func(t *testing.T) {
		status, body = 200, `{"access_token":"new","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300,"scope":"read"}`
		tok, err := mcpauth.Exchange(ctx, nil, srv.URL, client, "subject-tok", "https://api.example.com/mcp", "read", "write")
		if err != nil {
			t.Fatal(err)
		}
		want := &mcpauth.Token{AccessToken: "new", IssuedTokenType: mcpauth.TokenTypeAccessToken,
			TokenType: "Bearer", ExpiresIn: 300, Scope: "read"}
		if !reflect.DeepEqual(tok, want) {
			t.Errorf("token %+v, want %+v", tok, want)
		}
		wantForm := url.Values{
			"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":      {"subject-tok"},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"audience":           {"https://api.example.com/mcp"},
			"scope":              {"read write"},
		}
		if !reflect.DeepEqual(form, wantForm) {
			t.Errorf("form %v, want %v", form, wantForm)
		}
		// RFC 6749 §2.3.1: form-urlencoded inside Basic.
		if !basic || user != "svc%3Atools" || pass != "s3cr%26t" {
			t.Errorf("basic auth %v %q %q", basic, user, pass)
		}
	})

	t.Run("public client", func(t *testing.T) {
		status, body = 200, `{"access_token":"new","token_type":"Bearer"}`
		if _, err := mcpauth.Exchange(ctx, nil, srv.URL, mcpauth.ClientCredentials{ID: "pub"}, "subject-tok", ""); err != nil {
			t.Fatal(err)
		}
		if basic || form.Get("client_id") != "pub" || form.Has("audience") || form.Has("scope") {
			t.Errorf("basic %v, form %v", basic, form)
		}
	})

	errorCases := []struct {
		name   string
		status int
		body   string
		want   *mcpauth.ExchangeError
	}{
		{"invalid_target", 400, `{"error":"invalid_target","error_description":"audience not allowed","error_uri":"https://docs/x"}`,
			&mcpauth.ExchangeError{StatusCode: 400, Code: "invalid_target", Description: "audience not allowed", URI: "https://docs/x"}},
		{"invalid_client", 401, `{"error":"invalid_client"}`,
			&mcpauth.ExchangeError{StatusCode: 401, Code: "invalid_client"}},
		{"not OAuth", 502, `<html>bad gateway</html>`,
			&mcpauth.ExchangeError{StatusCode: 502, Description: "Bad Gateway"}},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			status, body = tc.status, tc.body
			_, err := mcpauth.Exchange(ctx, nil, srv.URL, client, "subject-tok", "aud")
			xe, ok := errors.AsType[*mcpauth.ExchangeError](err)
			if !ok || !reflect.DeepEqual(xe, tc.want) {
				t.Fatalf("error %#v, want %#v", err, tc.want)
			}
		})
	}

	t.Run("incomplete response", func(t *testing.T) {
		status, body = 200, `{"token_type":"Bearer"}`
		if _, err := mcpauth.Exchange(ctx, nil, srv.URL, client, "subject-tok", "aud"); err == nil {
			t.Error("accepted a response without access_token")
		}
	})
	t.Run("no subject token", func(t *testing.T) {
		if _, err := mcpauth.Exchange(ctx, nil, srv.URL, client, "", "aud"); err == nil {
			t.Error("no error")
		}
	})
}
