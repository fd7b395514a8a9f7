package mcpauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Middleware returns next guarded by the Verifier: a request without a
// valid bearer token gets 401 and an RFC 6750 challenge —
//
//	WWW-Authenticate: Bearer error="invalid_token", error_description="token expired", resource_metadata="…"
//
// (a bare `Bearer resource_metadata="…"` when there is no token at all) —
// saying why, so a client refreshes or re-authorizes instead of retrying
// the same token forever. When the keys cannot be fetched it answers 503.
//
// On success the request context carries the Identity ([FromContext]),
// and also the SDK's auth.TokenInfo, so an MCP Go SDK
// StreamableHTTPHandler passes it to handlers as req.Extra.TokenInfo
// ([FromRequest]) and binds each session to its user.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	sdk := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		id, ok := ctx.Value(identityKey{}).(*Identity)
		if !ok {
			return nil, errors.New("mcpauth: no identity in context")
		}
		return tokenInfo(id), nil
	}, &auth.RequireBearerTokenOptions{
		// Verify has enforced exp with Options.Now and Leeway; the SDK's
		// second look, with time.Now and no leeway, must not overrule it.
		ClockSkew: 100 * 365 * 24 * time.Hour,
	})(next)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.verifyRequest(r)
		if err != nil {
			v.refuse(w, r, err)
			return
		}
		sdk.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// verifyRequest verifies the request's bearer token. The header is split
// as auth.RequireBearerToken splits it, so both agree on what the token is.
func (v *Verifier) verifyRequest(r *http.Request) (*Identity, error) {
	fields := strings.Fields(r.Header.Get("Authorization"))
	if len(fields) == 0 || !strings.EqualFold(fields[0], "bearer") {
		return nil, ErrMissingToken
	}
	if len(fields) != 2 {
		return nil, reject(ErrInvalidToken, "malformed Authorization header")
	}
	return v.Verify(r.Context(), fields[1])
}

// refuse answers a request whose token was not accepted and logs why.
func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, err error) {
	desc := description(err)
	switch {
	case errors.Is(err, ErrMissingToken):
		v.logf(r, slog.LevelDebug, err)
		w.Header().Set("WWW-Authenticate", challenge("", "", "", v.metadataURL))
		http.Error(w, desc, http.StatusUnauthorized)
	case errors.Is(err, ErrInvalidToken):
		v.logf(r, slog.LevelInfo, err)
		w.Header().Set("WWW-Authenticate", challenge("invalid_token", desc, "", v.metadataURL))
		http.Error(w, desc, http.StatusUnauthorized)
	case errors.Is(err, ErrKeysUnavailable):
		v.logf(r, slog.LevelError, err)
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(v.keys.minRefresh.Round(time.Second)/time.Second))))
		http.Error(w, desc, http.StatusServiceUnavailable)
	default: // misconfiguration, or the client went away
		v.logf(r, slog.LevelError, err)
		http.Error(w, desc, http.StatusInternalServerError)
	}
}

func (v *Verifier) logf(r *http.Request, level slog.Level, err error) {
	if v.log != nil {
		v.log.Log(r.Context(), level, "mcpauth: request refused",
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// TokenVerifier adapts the Verifier to the MCP Go SDK's
// auth.RequireBearerToken, for servers that use that middleware:
//
//	handler = auth.RequireBearerToken(v.TokenVerifier(), &auth.RequireBearerTokenOptions{ResourceMetadataURL: …})(handler)
//
// The TokenInfo carries the Identity (see [FromRequest] and [FromContext])
// and its subject as UserID. Rejections unwrap to auth.ErrInvalidToken
// (the SDK answers 401) and to this package's sentinels; their messages
// are the client-safe descriptions. Unlike Middleware, the SDK's 401 does
// not say why in the challenge.
func (v *Verifier) TokenVerifier() auth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		id, err := v.Verify(ctx, token)
		if err != nil {
			if v.log != nil {
				v.log.InfoContext(ctx, "mcpauth: token refused", "err", err)
			}
			e := &safeError{msg: description(err), err: err}
			if errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrMissingToken) {
				e.msg = auth.ErrInvalidToken.Error() + ": " + e.msg
				e.invalid = true
			}
			return nil, e
		}
		return tokenInfo(id), nil
	}
}

// safeError shows a client-safe message and unwraps to the detailed cause
// (and to auth.ErrInvalidToken when the token is at fault).
type safeError struct {
	msg     string
	err     error
	invalid bool
}

func (e *safeError) Error() string { return e.msg }

func (e *safeError) Unwrap() []error {
	if e.invalid {
		return []error{auth.ErrInvalidToken, e.err}
	}
	return []error{e.err}
}

// challenge renders an RFC 6750 §3 Bearer challenge with the non-empty
// parameters.
func challenge(code, desc, scope, metadataURL string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString("=")
		b.WriteString(quote(value))
		sep = ", "
	}
	param("error", code)
	param("error_description", desc)
	param("scope", scope)
	param("resource_metadata", metadataURL)
	return b.String()
}

// quote renders s as an RFC 9110 quoted-string, dropping what a header
// must not carry (control characters).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
