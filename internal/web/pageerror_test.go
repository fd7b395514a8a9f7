package web

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFail is the HTML page surface's contract: every error page carries
// the security headers, shows the title and message it was given (escaped)
// and nothing of the cause, and is logged once at a level that fits.
func TestFail(t *testing.T) {
	secret := errors.New("open /var/lib/mcpgate/vault.key: permission denied")
	tests := []struct {
		name     string
		err      error
		status   int
		texts    []string // on the page
		notTexts []string // never on the page
		level    string
		logHas   []string
	}{
		{
			name:   "a page error shows its title and message",
			err:    &PageError{Status: http.StatusForbidden, Title: "Session expired", Message: "This form has expired."},
			status: http.StatusForbidden,
			texts:  []string{"<h1>Session expired</h1>", "This form has expired.", `role="alert"`},
			level:  "INFO",
		},
		{
			name:   "status 0 is 500",
			err:    &PageError{Title: "Error", Message: "Oops."},
			status: http.StatusInternalServerError,
			texts:  []string{"Oops."},
			level:  "ERROR",
		},
		{
			name:   "a status that is no error status is 500",
			err:    &PageError{Status: http.StatusFound, Title: "Error", Message: "Oops."},
			status: http.StatusInternalServerError,
			texts:  []string{"Oops."},
			level:  "ERROR",
		},
		{
			name:     "a refusal with a cause: the cause is logged at warn, never shown",
			err:      &PageError{Status: http.StatusBadRequest, Title: "Sign-in not started here", Message: "Start again.", Cause: secret},
			status:   http.StatusBadRequest,
			texts:    []string{"Sign-in not started here"},
			notTexts: []string{"vault.key", "permission denied"},
			level:    "WARN",
			logHas:   []string{"vault.key"},
		},
		{
			name:     "SomethingWrong",
			err:      SomethingWrong(secret),
			status:   http.StatusInternalServerError,
			texts:    []string{"<h1>Error</h1>", "Something went wrong; try again."},
			notTexts: []string{"vault.key"},
			level:    "ERROR",
			logHas:   []string{"vault.key"},
		},
		{
			name:   "a wrapped page error shows as itself; the wrapping is logged",
			err:    fmt.Errorf("authorize: unknown client %q: %w", "c9", &PageError{Status: 400, Title: "Unknown application", Message: "Register again."}),
			status: http.StatusBadRequest,
			texts:  []string{"Unknown application", "Register again."},
			level:  "INFO",
			logHas: []string{"unknown client", "c9"},
		},
		{
			name:     "any other error is the generic page",
			err:      secret,
			status:   http.StatusInternalServerError,
			texts:    []string{"Something went wrong; try again."},
			notTexts: []string{"vault.key", "permission denied"},
			level:    "ERROR",
			logHas:   []string{"vault.key"},
		},
		{
			name:     "text is escaped",
			err:      &PageError{Status: 400, Title: "Bad <b>", Message: `<script>alert(1)</script>`},
			status:   http.StatusBadRequest,
			texts:    []string{"&lt;script&gt;"},
			notTexts: []string{"<script>", "<b>"},
			level:    "INFO",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			rec := httptest.NewRecorder()
			Fail(rec, httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil), log, tc.err)

			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			h := rec.Header()
			if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
				!strings.Contains(csp, "form-action 'self';") {
				t.Errorf("CSP %q", csp)
			}
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			body := rec.Body.String()
			for _, s := range tc.texts {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.notTexts {
				if strings.Contains(body, s) {
					t.Errorf("page shows %q:\n%s", s, body)
				}
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one log line, got %d: %s", len(lines), logs.String())
			}
			if !strings.Contains(lines[0], "level="+tc.level) || !strings.Contains(lines[0], "path=/oauth/authorize") {
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

// TestHandle: a page handler that answers and returns nil (or a typed nil
// *PageError) is left alone; one that returns an error gets the error page.
func TestHandle(t *testing.T) {
	var typedNil *PageError
	for _, tc := range []struct {
		name   string
		ret    error
		status int
	}{
		{"nil", nil, http.StatusNoContent},
		{"typed nil", typedNil, http.StatusNoContent},
		{"error", &PageError{Status: http.StatusNotFound, Title: "Unknown", Message: "No such thing."}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Handle(slog.New(slog.DiscardHandler), func(w http.ResponseWriter, r *http.Request) error {
				if IsNil(tc.ret) {
					w.WriteHeader(http.StatusNoContent)
				}
				return tc.ret
			})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
		})
	}
}

// TestRenderTemplateFailure: a page whose template fails is a bare 500
// that still carries the page headers (no framing, no caching).
func TestRenderTemplateFailure(t *testing.T) {
	rec := httptest.NewRecorder()
	Render(rec, http.StatusOK, "no-such-page.html", nil)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("%d %v", rec.Code, rec.Header())
	}
}
