package tokens

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/internal/keys"
)

// TypeAccessToken is the JWS "typ" of an access token (RFC 9068 §2.1).
const TypeAccessToken = "at+jwt"

// Defaults.
const (
	DefaultTTL    = 10 * time.Minute
	DefaultLeeway = 30 * time.Second
)

// MaxTokenLength bounds the size of a token Verify will parse.
const MaxTokenLength = 32 << 10

// Verification errors. Verify wraps one of them with details meant for
// logs; the sentinel's own message is safe to return to the client (see
// Description).
var (
	ErrMalformed   = errors.New("malformed token")
	ErrAlgorithm   = errors.New("token signing algorithm not allowed")
	ErrType        = errors.New("not an access token")
	ErrUnknownKey  = errors.New("token signed by an unknown key")
	ErrSignature   = errors.New("invalid token signature")
	ErrIssuer      = errors.New("token issued by another issuer")
	ErrAudience    = errors.New("token not meant for this resource")
	ErrExpired     = errors.New("token expired")
	ErrNotYetValid = errors.New("token not yet valid")
)

var sentinels = []error{ErrMalformed, ErrAlgorithm, ErrType, ErrUnknownKey, ErrSignature,
	ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid}

// Description returns a message about err that is safe to send to a
// client (e.g. as error_description): the message of the sentinel err
// wraps, or "invalid token".
func Description(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "invalid token"
}

// wireClaims is the JSON form of Claims.
// actor is RFC 8693 §4.1's act claim: who acts on the subject's behalf.
type actor struct {
	Subject string `json:"sub"`
}

type wireClaims struct {
	Issuer      string           `json:"iss"`
	Subject     string           `json:"sub"`
	Audience    jwt.Audience     `json:"aud"`
	Expiry      *jwt.NumericDate `json:"exp"`
	IssuedAt    *jwt.NumericDate `json:"iat"`
	NotBefore   *jwt.NumericDate `json:"nbf,omitempty"`
	ID          string           `json:"jti,omitempty"`
	ClientID    string           `json:"client_id"`
	Scope       string           `json:"scope,omitempty"`
	Tenant      string           `json:"tenant,omitempty"`
	Roles       []string         `json:"roles,omitempty"`
	Groups      []string         `json:"groups,omitempty"`
	Permissions []string         `json:"permissions,omitempty"`
	Actor       *actor           `json:"act,omitempty"`
	GrantID     string           `json:"grant_id,omitempty"`
	ParentID    string           `json:"parent_jti,omitempty"`
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

func dateTime(n *jwt.NumericDate) time.Time {
	if n == nil {
		return time.Time{}
	}
	return n.Time()
}

// IssuerOptions configures an Issuer. The zero value is usable.
type IssuerOptions struct {
	// TTL is the lifetime of a token whose ExpiresAt is not set. Default
	// 10m; keep it below keys.Options.Overlap.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Issuer mints access tokens. Safe for concurrent use.
type Issuer struct {
	signing func() (keys.SigningKey, error)
	issuer  string
	ttl     time.Duration
	now     func() time.Time
	signer  atomic.Pointer[cachedSigner]
}

// cachedSigner is the jose.Signer of the last key used (a kid names one
// key pair).
type cachedSigner struct {
	kid    string
	alg    jose.SignatureAlgorithm
	signer jose.Signer
}

// NewIssuer returns an Issuer that signs with the key signing returns
// (e.g. (*keys.Manager).Signing) and sets iss to issuerURL.
func NewIssuer(signing func() (keys.SigningKey, error), issuerURL string, opts *IssuerOptions) *Issuer {
	var o IssuerOptions
	if opts != nil {
		o = *opts
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Issuer{signing: signing, issuer: issuerURL, ttl: o.TTL, now: o.Now}
}

// TTL returns the lifetime given to tokens without an explicit ExpiresAt.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Mint signs an access token with c's claims. Subject, ClientID and
// Audience are required. It sets iss to the issuer URL, iat to now unless
// set, exp to iat + TTL unless set and jti to a random 128-bit value
// unless set; the header carries typ "at+jwt" and the key's kid.
func (i *Issuer) Mint(c Claims) (string, error) {
	if c.Subject == "" || c.ClientID == "" || c.Audience == "" {
		return "", errors.New("tokens: mint: sub, client_id and aud are required")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = i.now()
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.IssuedAt.Add(i.ttl)
	}
	if c.ExpiresAt.Unix() <= c.IssuedAt.Unix() {
		return "", errors.New("tokens: mint: exp must be after iat")
	}
	if c.ID == "" {
		c.ID = randomString(16)
	}
	payload, err := json.Marshal(wireClaims{
		Issuer:      i.issuer,
		Subject:     c.Subject,
		Audience:    jwt.Audience{c.Audience},
		Expiry:      numericDate(c.ExpiresAt),
		IssuedAt:    numericDate(c.IssuedAt),
		NotBefore:   numericDate(c.NotBefore),
		ID:          c.ID,
		ClientID:    c.ClientID,
		Scope:       c.Scope,
		Tenant:      c.Tenant,
		Roles:       c.Roles,
		Groups:      c.Groups,
		Permissions: c.Permissions,
		Actor:       actorOf(c.Actor),
		GrantID:     c.GrantID,
		ParentID:    c.ParentID,
	})
	if err != nil {
		return "", fmt.Errorf("tokens: mint: %w", err)
	}
	signer, err := i.signerNow()
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("tokens: mint: sign: %w", err)
	}
	return obj.CompactSerialize()
}

func (i *Issuer) signerNow() (jose.Signer, error) {
	k, err := i.signing()
	if err != nil {
		return nil, fmt.Errorf("tokens: mint: %w", err)
	}
	if c := i.signer.Load(); c != nil && c.kid == k.ID && c.alg == k.Algorithm {
		return c.signer, nil
	}
	s, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.Algorithm, Key: jose.JSONWebKey{Key: k.Key, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType(TypeAccessToken),
	)
	if err != nil {
		return nil, fmt.Errorf("tokens: mint: signer for key %s: %w", k.ID, err)
	}
	i.signer.Store(&cachedSigner{kid: k.ID, alg: k.Algorithm, signer: s})
	return s, nil
}

// VerifierOptions configures a Verifier. The zero value is usable.
type VerifierOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat. 0 means
	// the default (30s); negative means none.
	Leeway time.Duration
	// Algorithms allowed in the JWS header; default [ES256]. "none" and
	// the HMAC algorithms are never allowed (NewVerifier panics).
	Algorithms []jose.SignatureAlgorithm
}

// Verifier checks access tokens. Safe for concurrent use.
type Verifier struct {
	lookup func(kid string) (*jose.JSONWebKey, bool)
	issuer string
	now    func() time.Time
	leeway time.Duration
	algs   []jose.SignatureAlgorithm
}

// NewVerifier returns a Verifier trusting the keys lookup finds by kid
// (e.g. (*keys.Manager).Lookup; it is called once per Verify and should
// be cheap) for tokens issued by issuerURL.
func NewVerifier(lookup func(kid string) (*jose.JSONWebKey, bool), issuerURL string, opts *VerifierOptions) *Verifier {
	var o VerifierOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = DefaultLeeway
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []jose.SignatureAlgorithm{jose.ES256}
	}
	for _, a := range o.Algorithms {
		switch a {
		case jose.HS256, jose.HS384, jose.HS512, "none", "":
			panic(fmt.Sprintf("tokens: algorithm %q must not be allowed for access tokens", a))
		}
	}
	return &Verifier{lookup: lookup, issuer: issuerURL, now: o.Now, leeway: o.Leeway,
		algs: append([]jose.SignatureAlgorithm(nil), o.Algorithms...)}
}

// Verify checks an access token presented to the resource audience and
// returns its claims (Audience set to audience). The checks, in order:
// compact JWS, alg allowed, typ "at+jwt" (or "application/at+jwt"), kid
// known, signature, iss, aud contains audience, exp/nbf/iat within the
// leeway, sub and client_id present. Errors wrap the sentinels above.
func (v *Verifier) Verify(token, audience string) (*Claims, error) {
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLength)
	}
	obj, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		if ua, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, fmt.Errorf("%w: %q", ErrAlgorithm, ua.Got)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h := obj.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) {
		return nil, fmt.Errorf("%w: typ %q", ErrType, typ)
	}
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid", ErrUnknownKey)
	}
	jwk, ok := v.lookup(h.KeyID)
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, h.KeyID)
	}
	if jwk.Algorithm != "" && jwk.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: %q with a %s key", ErrAlgorithm, h.Algorithm, jwk.Algorithm)
	}
	payload, err := obj.Verify(jwk.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}

	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if w.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: iss %q", ErrIssuer, w.Issuer)
	}
	if audience == "" || !w.Audience.Contains(audience) {
		return nil, fmt.Errorf("%w: aud %q", ErrAudience, []string(w.Audience))
	}
	if w.Expiry == nil || w.IssuedAt == nil {
		return nil, fmt.Errorf("%w: exp and iat are required", ErrMalformed)
	}
	now := v.now()
	exp := w.Expiry.Time()
	if !now.Before(exp.Add(v.leeway)) {
		return nil, fmt.Errorf("%w: at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if nbf := dateTime(w.NotBefore); now.Add(v.leeway).Before(nbf) {
		return nil, fmt.Errorf("%w: nbf %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
	}
	iat := w.IssuedAt.Time()
	if now.Add(v.leeway).Before(iat) {
		return nil, fmt.Errorf("%w: iat %s in the future", ErrNotYetValid, iat.UTC().Format(time.RFC3339))
	}
	if w.Subject == "" || w.ClientID == "" {
		return nil, fmt.Errorf("%w: sub and client_id are required", ErrMalformed)
	}
	return &Claims{
		Issuer:      w.Issuer,
		Subject:     w.Subject,
		Audience:    audience,
		ClientID:    w.ClientID,
		Scope:       w.Scope,
		IssuedAt:    iat,
		ExpiresAt:   exp,
		NotBefore:   dateTime(w.NotBefore),
		ID:          w.ID,
		Tenant:      w.Tenant,
		Roles:       w.Roles,
		Groups:      w.Groups,
		Permissions: w.Permissions,
		Actor:       actorSubject(w.Actor),
		GrantID:     w.GrantID,
		ParentID:    w.ParentID,
	}, nil
}

func actorSubject(a *actor) string {
	if a == nil {
		return ""
	}
	return a.Subject
}

// isAccessTokenType: RFC 9068 §4 accepts "at+jwt" and its full media
// type; media types compare case-insensitively (RFC 7515 §4.1.9).
func isAccessTokenType(typ string) bool {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
	}
	return strings.EqualFold(typ, TypeAccessToken)
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func actorOf(sub string) *actor {
	if sub == "" {
		return nil
	}
	return &actor{Subject: sub}
}
