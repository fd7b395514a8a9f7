package grants

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authenticateClient identifies the client of a token, revocation or
// introspection request by the one method it used (RFC 6749 §2.3; OAuth
// 2.1 §2.4; RFC 7523 §2.2 for private_key_jwt), and checks that it is the
// method the client registered.
func (h *Handler) authenticateClient(r *http.Request) (store.Client, *oauth.Error) {
	unauthorized := func(desc string) *oauth.Error {
		return &oauth.Error{Code: oauth.InvalidClient, Description: desc, Status: http.StatusUnauthorized}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// One reading of the credentials: net/http reads the first
		// Authorization header, a proxy in front may read another
		// (RFC 9110 §11.6.2 defines one value, not a list).
		return store.Client{}, oauth.Errorf(oauth.InvalidRequest, "send one Authorization header")
	}
	basicID, basicSecret, hasBasic := r.BasicAuth()
	postSecret := r.PostFormValue("client_secret")
	assertion := r.PostFormValue("client_assertion")
	methods := 0
	for _, used := range []bool{hasBasic, postSecret != "", assertion != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return store.Client{}, oauth.Errorf(oauth.InvalidRequest, "use exactly one client authentication method")
	}
	var method, id, secret string
	switch {
	case hasBasic:
		// RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return store.Client{}, unauthorized("malformed Basic credentials")
		}
		method = "client_secret_basic"
	case postSecret != "":
		id, secret, method = r.PostFormValue("client_id"), postSecret, "client_secret_post"
	case assertion != "":
		if r.PostFormValue("client_assertion_type") != assertionType {
			return store.Client{}, oauth.Errorf(oauth.InvalidRequest, "client_assertion_type must be %s", assertionType)
		}
		method = "private_key_jwt"
		var err error
		id, err = assertionSubject(assertion)
		if err != nil {
			return store.Client{}, unauthorized("malformed client_assertion")
		}
	default:
		id, method = r.PostFormValue("client_id"), "none"
	}
	if id == "" {
		return store.Client{}, unauthorized("client authentication is required")
	}
	if fid := r.PostFormValue("client_id"); fid != "" && fid != id {
		return store.Client{}, unauthorized("client_id does not match the client's credentials")
	}
	client, err := h.o.Clients.Client(r.Context(), id)
	if err != nil {
		// An unknown id gets invalid_client so the client registers again
		// instead of looping (DESIGN.md, "Client registrations").
		return store.Client{}, unauthorized("unknown client; register again")
	}
	registered := client.TokenEndpointAuthMethod
	if registered == "" {
		registered = "client_secret_basic"
	}
	if registered != method {
		return store.Client{}, unauthorized(fmt.Sprintf("this client must authenticate with %s", registered))
	}
	switch method {
	case "client_secret_basic", "client_secret_post":
		if client.SecretHash == "" || subtle.ConstantTimeCompare([]byte(tokens.HashSecret(secret)), []byte(client.SecretHash)) != 1 {
			return store.Client{}, unauthorized("wrong client secret")
		}
		if !client.SecretExpiresAt.IsZero() && h.o.Now().After(client.SecretExpiresAt) {
			return store.Client{}, unauthorized("the client secret expired")
		}
	case "private_key_jwt":
		if err := h.verifyAssertion(r.Context(), client, assertion); err != nil {
			h.log.Info("client assertion refused", "client", client.ID, "err", err)
			return store.Client{}, unauthorized("client_assertion is not valid")
		}
	}
	return client, nil
}

var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.EdDSA}

func assertionSubject(assertion string) (string, error) {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil {
		return "", err
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", err
	}
	return c.Subject, nil
}

// verifyAssertion checks a private_key_jwt assertion (RFC 7523 §3): signed
// by a key of the client, iss = sub = client_id, aud naming our token
// endpoint or issuer, short-lived, and never seen before (jti).
func (h *Handler) verifyAssertion(ctx context.Context, client store.Client, assertion string) error {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil {
		return err
	}
	set, err := h.clientKeys(ctx, client)
	if err != nil {
		return err
	}
	var claims jwt.Claims
	verified := false
	for _, hdr := range tok.Headers {
		for _, k := range set.Keys {
			if hdr.KeyID != "" && k.KeyID != "" && hdr.KeyID != k.KeyID {
				continue
			}
			if tok.Claims(k.Key, &claims) == nil {
				verified = true
				break
			}
		}
	}
	if !verified {
		return fmt.Errorf("signature does not verify with the client's keys")
	}
	if claims.Issuer != client.ID || claims.Subject != client.ID {
		return fmt.Errorf("iss and sub must be the client id")
	}
	if err := h.checkAssertionTimes(claims); err != nil {
		return err
	}
	if claims.ID == "" {
		return fmt.Errorf("jti is required")
	}
	// Single use on every replica (RFC 7523 §3 item 7), kept a minute
	// past exp to cover clock skew.
	if err := h.o.Access.FirstUse(ctx, client.ID+" "+claims.ID, claims.Expiry.Time().Add(time.Minute)); err != nil {
		if errors.Is(err, access.ErrReplayed) {
			return fmt.Errorf("assertion replayed")
		}
		return err
	}
	return nil
}

// Limits on a client assertion's times (RFC 7523 §3): exp is required
// and close, nbf and iat (both optional) not in the future, iat not old.
// The leeway absorbs clock skew between the client and us.
const (
	assertionLeeway = 30 * time.Second
	assertionMaxAge = 10 * time.Minute
)

// checkAssertionTimes checks aud (RFC 7523 §3 item 3: it must identify
// this authorization server; here the token endpoint or the issuer, and
// nothing else, so an assertion made for several servers is not accepted
// by any of them), then exp, nbf and iat.
func (h *Handler) checkAssertionTimes(claims jwt.Claims) error {
	if len(claims.Audience) == 0 || slices.ContainsFunc(claims.Audience, func(a string) bool { return a != h.TokenEndpoint() && a != h.o.Issuer }) {
		return fmt.Errorf("aud must name the token endpoint or the issuer, and nothing else")
	}
	now := h.o.Now()
	switch {
	case claims.Expiry == nil:
		return fmt.Errorf("exp is required")
	case !now.Before(claims.Expiry.Time().Add(assertionLeeway)):
		return fmt.Errorf("the assertion expired")
	case claims.Expiry.Time().After(now.Add(assertionMaxAge)):
		return fmt.Errorf("exp is too far ahead")
	case claims.NotBefore != nil && now.Add(assertionLeeway).Before(claims.NotBefore.Time()):
		return fmt.Errorf("the assertion is not valid yet (nbf)")
	case claims.IssuedAt != nil && now.Add(assertionLeeway).Before(claims.IssuedAt.Time()):
		return fmt.Errorf("iat is in the future")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().Before(now.Add(-assertionMaxAge)):
		return fmt.Errorf("iat is too old")
	}
	return nil
}

// maxKeysBytes bounds a fetched JWK Set; maxKeysRedirects bounds the
// redirects followed to it (each hop re-checked by the fetcher).
const (
	maxKeysBytes     = 64 << 10
	maxKeysRedirects = 3
)

// clientKeys returns the client's keys: inline, or fetched from its
// jwks_uri through the guarded fetcher (cached as its headers allow).
func (h *Handler) clientKeys(ctx context.Context, client store.Client) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if len(client.JWKS) > 0 {
		err := json.Unmarshal(client.JWKS, &set)
		return set, err
	}
	if client.JWKSURI == "" {
		return set, fmt.Errorf("the client has no keys")
	}
	f := h.o.KeysFetcher
	if oauth.OperatorRegistered(client) {
		f = h.o.OperatorKeysFetcher
	}
	resp, err := f.Get(ctx, safefetch.Request{URL: client.JWKSURI, Accept: "application/jwk-set+json, application/json",
		MaxBytes: maxKeysBytes, MaxRedirects: maxKeysRedirects})
	if err != nil {
		return set, fmt.Errorf("jwks_uri: %w", err)
	}
	err = json.Unmarshal(resp.Body, &set)
	return set, err
}
