package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Verification errors. Every rejection of a token matches ErrInvalidToken
// under errors.Is; the more precise ones match their own sentinel too, so
// callers can answer (or log) precisely. A sentinel's message is safe to
// send to the client, e.g. as error_description; the wrapped error's full
// message adds details meant for logs.
var (
	// ErrMissingToken: the request carries no bearer token. RFC 6750 §3.1
	// says to answer it with a bare challenge, without an error code.
	ErrMissingToken = errors.New("missing bearer token")
	// ErrInvalidToken: the token is malformed, of the wrong type, signed
	// with a disallowed algorithm, has a bad signature or lacks a
	// required claim. All the errors below also match it.
	ErrInvalidToken = errors.New("invalid token")
	ErrUnknownKey   = errors.New("token signed by an unknown key")
	ErrIssuer       = errors.New("token issued by an untrusted issuer")
	ErrAudience     = errors.New("token not meant for this resource")
	ErrExpired      = errors.New("token expired")
	ErrNotYetValid  = errors.New("token not yet valid")

	// ErrKeysUnavailable: the issuer's signing keys could not be fetched,
	// so the token could not be checked. It is not the token's fault and
	// does not match ErrInvalidToken; Middleware answers 503.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

// tokenError is a rejection: a sentinel, plus ErrInvalidToken, plus detail.
type tokenError struct {
	kind   error
	detail string
}

func (e *tokenError) Error() string { return e.kind.Error() + ": " + e.detail }

func (e *tokenError) Unwrap() []error {
	if e.kind == ErrInvalidToken {
		return []error{ErrInvalidToken}
	}
	return []error{e.kind, ErrInvalidToken}
}

func reject(kind error, format string, args ...any) error {
	return &tokenError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// description is the client-safe text for err (see the sentinels).
func description(err error) string {
	for _, s := range []error{ErrMissingToken, ErrUnknownKey, ErrIssuer, ErrAudience,
		ErrExpired, ErrNotYetValid, ErrKeysUnavailable, ErrInvalidToken} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "internal error"
}

// Defaults of Options.
const (
	DefaultLeeway     = 30 * time.Second
	DefaultMinRefresh = 10 * time.Second
	DefaultMaxAge     = 15 * time.Minute
)

// maxTokenLength bounds the size of a token Verify parses.
const maxTokenLength = 32 << 10

// allowedAlgorithms are the asymmetric algorithms a token may be signed
// with. "none" and the HMAC algorithms are never allowed: with an HMAC
// algorithm an attacker could sign with the (public) verification key.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// Options configures a Verifier. A nil *Options and zero fields mean the
// defaults.
type Options struct {
	// HTTPClient fetches the discovery document and the JWKS. Default: a
	// client with a 10s timeout.
	HTTPClient *http.Client
	// JWKSURL is where the issuer's keys are. Default: the jwks_uri of
	// ISSUER/.well-known/oauth-authorization-server (RFC 8414), or
	// ISSUER/oauth/jwks (mcpgate's) when that document cannot be fetched.
	JWKSURL string
	// Leeway is the clock skew tolerated on exp, nbf and iat. 0 means
	// DefaultLeeway (30s); negative means none.
	Leeway time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MinRefresh is the least time between two fetches of the JWKS, so a
	// flood of tokens with made-up key ids cannot make the Verifier hammer
	// the issuer. A token signed by a key not yet in the cache triggers a
	// fetch (that is how rotated keys are picked up without a restart)
	// unless the last one was less than MinRefresh ago. Default 10s.
	MinRefresh time.Duration
	// MaxAge is how long a fetched key set is used before it is fetched
	// again, so a key the issuer withdrew stops being trusted. When the
	// refetch fails the old set stays in use (mcpgate being briefly down
	// should not stop its servers). Default 15m.
	MaxAge time.Duration
	// ResourceMetadataURL is this server's RFC 9728 protected resource
	// metadata URL, for a server clients also reach directly (the SDK's
	// auth.ProtectedResourceMetadataHandler serves the document, naming
	// mcpgate as authorization server). When set, Middleware's challenges
	// carry it as resource_metadata, so clients can find where to get a
	// token.
	ResourceMetadataURL string
	// Logger, when set, receives why Middleware refused a request (the
	// client only sees the short description).
	Logger *slog.Logger
}

// Verifier verifies access tokens mcpgate minted for one audience. It is
// safe for concurrent use; create one per audience and keep it (it caches
// the issuer's keys).
type Verifier struct {
	issuer, audience string
	leeway           time.Duration
	now              func() time.Time
	keys             *keyCache
	metadataURL      string
	log              *slog.Logger
}

// NewVerifier returns a Verifier for tokens issued by issuer (mcpgate's
// public URL, compared exactly with iss) for audience (the audience
// configured for this server in mcpgate, which must be in aud). Nothing is
// fetched until the first Verify.
func NewVerifier(issuer, audience string, opts *Options) *Verifier {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = DefaultLeeway
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = DefaultMinRefresh
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	return &Verifier{
		issuer:   issuer,
		audience: audience,
		leeway:   o.Leeway,
		now:      o.Now,
		keys: &keyCache{
			hc:         o.HTTPClient,
			issuer:     issuer,
			jwksURL:    o.JWKSURL,
			minRefresh: o.MinRefresh,
			maxAge:     o.MaxAge,
			now:        o.Now,
		},
		metadataURL: o.ResourceMetadataURL,
		log:         o.Logger,
	}
}

// claims is the JSON form of the token's claims.
type claims struct {
	Issuer      string           `json:"iss"`
	Subject     string           `json:"sub"`
	Audience    jwt.Audience     `json:"aud"`
	Expiry      *jwt.NumericDate `json:"exp"`
	IssuedAt    *jwt.NumericDate `json:"iat"`
	NotBefore   *jwt.NumericDate `json:"nbf"`
	ID          string           `json:"jti"`
	ClientID    string           `json:"client_id"`
	Scope       string           `json:"scope"`
	Tenant      string           `json:"tenant"`
	Roles       []string         `json:"roles"`
	Groups      []string         `json:"groups"`
	Permissions []string         `json:"permissions"`
	Actor       *struct {
		Subject string `json:"sub"`
	} `json:"act"`
}

// Verify checks token and returns whom it speaks for. In order: a compact
// JWS no longer than 32 KiB, alg one of ES256, RS256, PS256, EdDSA, typ
// "at+jwt" or "application/at+jwt" (RFC 9068 §4, so an ID token cannot
// pass as an access token), a kid found in the issuer's JWKS, the
// signature, iss equal to the issuer, aud containing the audience,
// exp/nbf/iat within the leeway, and sub, client_id, exp and iat present.
//
// Errors match ErrMissingToken, ErrKeysUnavailable, or ErrInvalidToken
// and possibly a more precise sentinel. ctx bounds the wait for a JWKS
// fetch.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if v.issuer == "" || v.audience == "" {
		return nil, errors.New("mcpauth: Verifier needs an issuer and an audience")
	}
	if token == "" {
		return nil, ErrMissingToken
	}
	if len(token) > maxTokenLength {
		return nil, reject(ErrInvalidToken, "longer than %d bytes", maxTokenLength)
	}
	obj, err := jose.ParseSignedCompact(token, allowedAlgorithms)
	if err != nil {
		if ua, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, reject(ErrInvalidToken, "algorithm %q not allowed", ua.Got)
		}
		return nil, reject(ErrInvalidToken, "malformed: %v", err)
	}
	h := obj.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) {
		return nil, reject(ErrInvalidToken, "typ %q is not at+jwt", typ)
	}
	if h.KeyID == "" {
		return nil, reject(ErrUnknownKey, "no kid")
	}
	jwk, err := v.keys.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if jwk.Algorithm != "" && jwk.Algorithm != h.Algorithm {
		return nil, reject(ErrInvalidToken, "alg %q with a key for %s", h.Algorithm, jwk.Algorithm)
	}
	payload, err := obj.Verify(jwk.Key)
	if err != nil {
		return nil, reject(ErrInvalidToken, "signature: %v", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, reject(ErrInvalidToken, "claims: %v", err)
	}
	return v.check(&c)
}

// check validates verified claims and builds the Identity.
func (v *Verifier) check(c *claims) (*Identity, error) {
	if c.Issuer != v.issuer {
		return nil, reject(ErrIssuer, "iss %q, want %q", c.Issuer, v.issuer)
	}
	if !c.Audience.Contains(v.audience) {
		return nil, reject(ErrAudience, "aud %q does not contain %q", []string(c.Audience), v.audience)
	}
	if c.Expiry == nil || c.IssuedAt == nil {
		return nil, reject(ErrInvalidToken, "exp and iat are required")
	}
	now := v.now()
	exp, iat := c.Expiry.Time(), c.IssuedAt.Time()
	if !now.Before(exp.Add(v.leeway)) {
		return nil, reject(ErrExpired, "exp %s", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(v.leeway).Before(c.NotBefore.Time()) {
		return nil, reject(ErrNotYetValid, "nbf %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	}
	if now.Add(v.leeway).Before(iat) {
		return nil, reject(ErrNotYetValid, "iat %s is in the future", iat.UTC().Format(time.RFC3339))
	}
	if c.Subject == "" || c.ClientID == "" {
		return nil, reject(ErrInvalidToken, "sub and client_id are required")
	}
	id := &Identity{
		Subject:     c.Subject,
		ClientID:    c.ClientID,
		Tenant:      c.Tenant,
		Issuer:      c.Issuer,
		Audience:    v.audience,
		Scopes:      strings.Fields(c.Scope),
		Roles:       c.Roles,
		Groups:      c.Groups,
		Permissions: c.Permissions,
		ExpiresAt:   exp,
		TokenID:     c.ID,
	}
	if c.Actor != nil {
		id.Actor = c.Actor.Subject
	}
	return id, nil
}

// isAccessTokenType: RFC 9068 §4 accepts "at+jwt" and the full media type;
// media types compare case-insensitively (RFC 7515 §4.1.9).
func isAccessTokenType(typ string) bool {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
	}
	return strings.EqualFold(typ, "at+jwt")
}
