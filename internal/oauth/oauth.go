// Package oauth holds the OAuth 2.1 protocol vocabulary the authorization
// server and the gateway share: error codes and the one error writer,
// JSON responses that must not be cached, and client authentication at
// the token endpoint's door. Endpoint logic lives in authflow and grants.
package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes (RFC 6749 §4.1.2.1, §5.2; RFC 8707 §2; RFC 6750 §3.1;
// RFC 7591 §3.2.2).
const (
	InvalidRequest          = "invalid_request"
	InvalidClient           = "invalid_client"
	InvalidGrant            = "invalid_grant"
	UnauthorizedClient      = "unauthorized_client"
	UnsupportedGrantType    = "unsupported_grant_type"
	UnsupportedResponseType = "unsupported_response_type"
	InvalidScope            = "invalid_scope"
	AccessDenied            = "access_denied"
	ServerError             = "server_error"
	InvalidTarget           = "invalid_target"
	InvalidToken            = "invalid_token"
	InsufficientScope       = "insufficient_scope"
	UnsupportedTokenType    = "unsupported_token_type"
	InvalidRedirectURI      = "invalid_redirect_uri"
	InvalidClientMetadata   = "invalid_client_metadata"
	// TemporarilyUnavailable (RFC 6749 §4.1.2.1) answers a request refused
	// by a rate limit, with HTTP 429 and Retry-After.
	TemporarilyUnavailable = "temporarily_unavailable"
)

// Error is a protocol error: what the client is told. The cause, if any,
// is for the log only: it never reaches the response.
type Error struct {
	Code        string
	Description string
	Status      int // HTTP status; 0 means 400
	Cause       error
	// Challenge is the WWW-Authenticate value of a 401 (RFC 6750 §3 for a
	// bearer token). "" with invalid_client and 401 means the Basic
	// challenge RFC 6749 §5.2 requires.
	Challenge string
	// RetryAfter, when positive, is sent as Retry-After in whole seconds
	// (rounded up, at least 1; RFC 9110 §10.2.3) with a 429 or 503.
	RetryAfter time.Duration
	// Allow lists the methods of a 405 (RFC 9110 §15.5.6).
	Allow []string
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Cause)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// status is the HTTP status e is answered with: 400 when unset, and 500
// for one that is no error status (a mistake must not answer 2xx or 3xx).
func (e *Error) status() int {
	switch {
	case e.Status == 0:
		return http.StatusBadRequest
	case e.Status < 400 || e.Status > 599:
		return http.StatusInternalServerError
	}
	return e.Status
}

// Errorf builds an Error with status 400.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// WriteError writes e as the JSON error response of RFC 6749 §5.2 (the
// same shape serves RFC 7009, 7662, 7591 §3.2.2 and 8693), never cached.
// It is the one place an OAuth endpoint's error meets the wire: the
// status, and the headers the status needs (WWW-Authenticate on a 401, an
// invalid_client answered with 401 carrying the Basic challenge of §5.2;
// Retry-After; Allow). e.Cause is not written.
func WriteError(w http.ResponseWriter, e *Error) {
	status := e.status()
	h := w.Header()
	switch {
	case status == http.StatusUnauthorized && e.Challenge != "":
		h.Set("WWW-Authenticate", e.Challenge)
	case status == http.StatusUnauthorized && e.Code == InvalidClient:
		h.Set("WWW-Authenticate", `Basic realm="mcpgate"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(max(1, (e.RetryAfter+time.Second-1)/time.Second)), 10))
	}
	if len(e.Allow) > 0 {
		h.Set("Allow", strings.Join(e.Allow, ", "))
	}
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	WriteJSON(w, status, body)
}

// WriteJSON writes v with Cache-Control: no-store (RFC 6749 §5.1).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ParseScope splits a space-delimited scope string, dropping duplicates.
func ParseScope(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Fields(s) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// BearerChallenge builds a WWW-Authenticate value for a protected resource
// (RFC 6750 §3, RFC 9728 §5.1). Empty values are left out.
func BearerChallenge(resourceMetadata, scope, code, description string) string {
	parts := []string{}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, fmt.Sprintf(`%s="%s"`, k, strings.NewReplacer(`"`, `'`, `\`, `/`).Replace(v)))
		}
	}
	add("error", code)
	add("error_description", description)
	add("resource_metadata", resourceMetadata)
	add("scope", scope)
	if len(parts) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(parts, ", ")
}
