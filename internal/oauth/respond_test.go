package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFail is the OAuth JSON surface's contract: what each error looks
// like on the wire (status, body, the headers its status needs, never
// cached), that the cause stays out of the response, and that it is
// logged once at a level that fits.
func TestFail(t *testing.T) {
	secret := errors.New("db at /var/lib/secret.db: locked")
	tests := []struct {
		name       string
		err        error
		status     int
		body       map[string]string
		header     map[string]string // "" = must be absent
		level      string
		logHas     []string
		notInReply []string
	}{
		{
			name:   "plain error is 400",
			err:    Errorf(InvalidRequest, "token is required"),
			status: 400,
			body:   map[string]string{"error": "invalid_request", "error_description": "token is required"},
			header: map[string]string{"WWW-Authenticate": "", "Retry-After": "", "Allow": ""},
			level:  "INFO",
		},
		{
			name:   "no description, no member",
			err:    &Error{Code: InvalidGrant},
			status: 400,
			body:   map[string]string{"error": "invalid_grant"},
			level:  "INFO",
		},
		{
			name:   "invalid_client 401 gets the Basic challenge (RFC 6749 §5.2)",
			err:    &Error{Code: InvalidClient, Description: "bad secret", Status: 401},
			status: 401,
			body:   map[string]string{"error": "invalid_client", "error_description": "bad secret"},
			header: map[string]string{"WWW-Authenticate": `Basic realm="mcpgate"`},
			level:  "INFO",
		},
		{
			name:   "invalid_client 400 has no challenge",
			err:    &Error{Code: InvalidClient, Description: "x"},
			status: 400,
			body:   map[string]string{"error": "invalid_client", "error_description": "x"},
			header: map[string]string{"WWW-Authenticate": ""},
			level:  "INFO",
		},
		{
			name:   "a given challenge wins (RFC 6750 §3)",
			err:    &Error{Code: InvalidToken, Description: "no token", Status: 401, Challenge: "Bearer"},
			status: 401,
			body:   map[string]string{"error": "invalid_token", "error_description": "no token"},
			header: map[string]string{"WWW-Authenticate": "Bearer"},
			level:  "INFO",
		},
		{
			name:   "challenge only with 401",
			err:    &Error{Code: InvalidToken, Status: 403, Challenge: "Bearer"},
			status: 403,
			body:   map[string]string{"error": "invalid_token"},
			header: map[string]string{"WWW-Authenticate": ""},
			level:  "INFO",
		},
		{
			name:   "Retry-After rounds up to whole seconds; 429 logs at debug",
			err:    &Error{Code: TemporarilyUnavailable, Status: 429, RetryAfter: 1500 * time.Millisecond},
			status: 429,
			body:   map[string]string{"error": "temporarily_unavailable"},
			header: map[string]string{"Retry-After": "2"},
			level:  "DEBUG",
		},
		{
			name:   "Retry-After at least 1",
			err:    &Error{Code: ServerError, Status: 503, RetryAfter: time.Millisecond},
			status: 503,
			body:   map[string]string{"error": "server_error"},
			header: map[string]string{"Retry-After": "1"},
			level:  "ERROR",
		},
		{
			name:   "Allow on 405",
			err:    &Error{Code: InvalidRequest, Description: "use POST", Status: 405, Allow: []string{"POST"}},
			status: 405,
			body:   map[string]string{"error": "invalid_request", "error_description": "use POST"},
			header: map[string]string{"Allow": "POST"},
			level:  "INFO",
		},
		{
			name:   "a status that is no error status answers 500",
			err:    &Error{Code: InvalidRequest, Status: http.StatusOK},
			status: 500,
			body:   map[string]string{"error": "invalid_request"},
			level:  "ERROR",
		},
		{
			name:       "the cause is logged, never answered",
			err:        &Error{Code: ServerError, Description: "could not revoke", Status: 500, Cause: secret},
			status:     500,
			body:       map[string]string{"error": "server_error", "error_description": "could not revoke"},
			level:      "ERROR",
			logHas:     []string{"secret.db"},
			notInReply: []string{"secret.db"},
		},
		{
			name:   "a wrapped Error answers as itself; the wrapping is logged",
			err:    fmt.Errorf("token request of client c1 refused: %w", Errorf(InvalidGrant, "unknown refresh token")),
			status: 400,
			body:   map[string]string{"error": "invalid_grant", "error_description": "unknown refresh token"},
			level:  "INFO",
			logHas: []string{"client c1", "unknown refresh token"},
		},
		{
			name:       "any other error is a bare server_error",
			err:        secret,
			status:     500,
			body:       map[string]string{"error": "server_error", "error_description": "internal error"},
			level:      "ERROR",
			logHas:     []string{"secret.db"},
			notInReply: []string{"secret.db", "locked"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			rec := httptest.NewRecorder()
			Fail(rec, httptest.NewRequest(http.MethodPost, "/oauth/token", nil), log, tc.err)

			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not a JSON object of strings: %v: %s", err, rec.Body)
			}
			if fmt.Sprint(body) != fmt.Sprint(tc.body) {
				t.Errorf("body %v, want %v", body, tc.body)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.header {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, s := range tc.notInReply {
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("the reply shows %q: %s", s, rec.Body)
				}
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one log line, got %d: %s", len(lines), logs.String())
			}
			if !strings.Contains(lines[0], "level="+tc.level) || !strings.Contains(lines[0], "path=/oauth/token") {
				t.Errorf("log line %q, want level %s and the path", lines[0], tc.level)
			}
			for _, s := range tc.logHas {
				if !strings.Contains(lines[0], s) {
					t.Errorf("log line %q lacks %q", lines[0], s)
				}
			}
		})
	}
}

// TestHandle: an endpoint that answers and returns nil (or a typed nil
// *Error) is left alone; one that returns an error is answered by Fail.
func TestHandle(t *testing.T) {
	var typedNil *Error
	tests := []struct {
		name   string
		ret    error
		status int
		logged bool
	}{
		{"nil", nil, http.StatusOK, false},
		{"typed nil", typedNil, http.StatusOK, false},
		{"error", Errorf(InvalidRequest, "no"), http.StatusBadRequest, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := Handle(slog.New(slog.NewTextHandler(&logs, nil)), func(w http.ResponseWriter, r *http.Request) error {
				if tc.ret == nil || tc.ret == error(typedNil) {
					WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
				}
				return tc.ret
			})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", nil))
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if got := logs.Len() > 0; got != tc.logged {
				t.Errorf("logged %v, want %v: %s", got, tc.logged, logs.String())
			}
		})
	}
}
