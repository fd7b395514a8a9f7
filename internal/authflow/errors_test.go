package authflow

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/web"
)

// TestHandleErrors is the contract of the flow's two error paths: an
// error for the client (request.fail, only ever from a validated request)
// is a 302 to its redirect URI with error, error_description, state and
// iss (RFC 6749 §4.1.2.1, RFC 9207), wrapped or not; anything else is the
// error page. Each is logged once.
func TestHandleErrors(t *testing.T) {
	const issuer = "https://gw.example"
	req := request{RedirectURI: "http://127.0.0.1:9/cb", State: "st&1"}
	withCause := req.fail(oauth.ServerError, "could not issue a code")
	withCause.cause = errors.New("database is locked")
	tests := []struct {
		name     string
		err      error
		status   int
		location url.Values // for a redirect
		base     string     // the Location without its query
		page     string     // a text on the error page
		level    string
	}{
		{
			name:     "to the client, with state and iss",
			err:      req.fail(oauth.AccessDenied, "the user denied access"),
			status:   http.StatusFound,
			base:     "http://127.0.0.1:9/cb",
			location: url.Values{"error": {"access_denied"}, "error_description": {"the user denied access"}, "state": {"st&1"}, "iss": {issuer}},
			level:    "INFO",
		},
		{
			name:     "no state, none sent; a query of the redirect URI is kept",
			err:      request{RedirectURI: "https://app.example/cb?x=1"}.fail(oauth.InvalidScope, "none"),
			status:   http.StatusFound,
			base:     "https://app.example/cb",
			location: url.Values{"x": {"1"}, "error": {"invalid_scope"}, "error_description": {"none"}, "iss": {issuer}},
			level:    "INFO",
		},
		{
			name:     "wrapped for the log, still to the client",
			err:      fmt.Errorf("no scope granted to user u1: %w", req.fail(oauth.InvalidScope, "policy grants you none")),
			status:   http.StatusFound,
			base:     "http://127.0.0.1:9/cb",
			location: url.Values{"error": {"invalid_scope"}, "error_description": {"policy grants you none"}, "state": {"st&1"}, "iss": {issuer}},
			level:    "INFO",
		},
		{
			name:     "a server error's cause is logged, not sent",
			err:      withCause,
			status:   http.StatusFound,
			base:     "http://127.0.0.1:9/cb",
			location: url.Values{"error": {"server_error"}, "error_description": {"could not issue a code"}, "state": {"st&1"}, "iss": {issuer}},
			level:    "ERROR",
		},
		{
			name:   "a page error is a page, never a redirect",
			err:    &web.PageError{Status: http.StatusBadRequest, Title: "Invalid redirect", Message: "The application asked to return to an address it did not register."},
			status: http.StatusBadRequest,
			page:   "The application asked to return to an address it did not register.",
			level:  "INFO",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h, err := New(Options{Issuer: issuer, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.handle(func(http.ResponseWriter, *http.Request) error { return tc.err }).
				ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth/consent", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.location != nil {
				loc, err := url.Parse(rec.Header().Get("Location"))
				if err != nil {
					t.Fatal(err)
				}
				if got := loc.Scheme + "://" + loc.Host + loc.Path; got != tc.base {
					t.Errorf("redirect to %s, want %s", got, tc.base)
				}
				if loc.Query().Encode() != tc.location.Encode() {
					t.Errorf("query %s, want %s", loc.Query().Encode(), tc.location.Encode())
				}
				if strings.Contains(loc.RawQuery, "locked") {
					t.Errorf("the cause reached the client: %s", loc)
				}
			} else {
				if rec.Header().Get("Location") != "" {
					t.Errorf("redirected to %s", rec.Header().Get("Location"))
				}
				if !strings.Contains(rec.Body.String(), tc.page) || rec.Header().Get("X-Frame-Options") != "DENY" {
					t.Errorf("page %s", rec.Body)
				}
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "level="+tc.level) {
				t.Errorf("want one log line at %s, got: %s", tc.level, logs.String())
			}
			if tc.err == error(withCause) && !strings.Contains(lines[0], "database is locked") {
				t.Errorf("the cause is not logged: %s", lines[0])
			}
		})
	}
}
