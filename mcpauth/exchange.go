package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RFC 8693 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// ClientCredentials authenticate the calling server at the token endpoint
// (client_secret_basic). A client without a secret is sent as client_id
// in the form (a public client).
type ClientCredentials struct {
	ID, Secret string
}

// Token is a successful token exchange response (RFC 8693 §2.2.1).
type Token struct {
	AccessToken     string
	IssuedTokenType string // e.g. TokenTypeAccessToken
	TokenType       string // "Bearer" (or "N_A" for non-access tokens)
	ExpiresIn       int    // seconds; 0 when not sent
	Scope           string // the granted scopes, when they differ from those asked for
}

// ExchangeError is an error answer from the token endpoint (RFC 8693
// §2.2.2, RFC 6749 §5.2), e.g. Code "invalid_target" when the audience is
// not one the client may ask for, or "invalid_grant" when the subject
// token is no longer valid.
type ExchangeError struct {
	StatusCode  int
	Code        string // the OAuth error code; empty when the body was not an OAuth error
	Description string
	URI         string
}

func (e *ExchangeError) Error() string {
	msg := "mcpauth: token exchange: "
	if e.Code != "" {
		msg += e.Code
	} else {
		msg += "HTTP " + strconv.Itoa(e.StatusCode)
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// maxTokenResponse bounds the token endpoint's answer.
const maxTokenResponse = 1 << 20

// Exchange trades subjectToken (an access token the caller received) for
// one meant for audience, with the given scopes (RFC 8693 §2.1), at
// tokenEndpoint (mcpgate: ISSUER/oauth/token). A server uses it to call
// another protected service as the same user, rather than forwarding its
// own token, which that service must refuse (its aud is not that
// service). hc nil means a client with a 30s timeout.
//
// Errors from the endpoint are *ExchangeError.
func Exchange(ctx context.Context, hc *http.Client, tokenEndpoint string, client ClientCredentials,
	subjectToken, audience string, scopes ...string) (*Token, error) {
	if subjectToken == "" {
		return nil, errors.New("mcpauth: token exchange: no subject token")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	form := url.Values{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {TokenTypeAccessToken},
	}
	if audience != "" {
		form.Set("audience", audience)
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if client.Secret == "" && client.ID != "" {
		form.Set("client_id", client.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("mcpauth: token exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if client.Secret != "" {
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(client.ID), url.QueryEscape(client.Secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: token exchange: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("mcpauth: token exchange: reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, exchangeError(resp.StatusCode, body)
	}
	return parseToken(body)
}

func exchangeError(status int, body []byte) error {
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
		URI         string `json:"error_uri"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == "" {
		return &ExchangeError{StatusCode: status, Description: http.StatusText(status)}
	}
	return &ExchangeError{StatusCode: status, Code: e.Code, Description: e.Description, URI: e.URI}
}

func parseToken(body []byte) (*Token, error) {
	var t struct {
		AccessToken     string      `json:"access_token"`
		IssuedTokenType string      `json:"issued_token_type"`
		TokenType       string      `json:"token_type"`
		ExpiresIn       json.Number `json:"expires_in"`
		Scope           string      `json:"scope"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("mcpauth: token exchange: response: %w", err)
	}
	if t.AccessToken == "" || t.TokenType == "" {
		return nil, errors.New("mcpauth: token exchange: response lacks access_token or token_type")
	}
	tok := &Token{AccessToken: t.AccessToken, IssuedTokenType: t.IssuedTokenType,
		TokenType: t.TokenType, Scope: t.Scope}
	if t.ExpiresIn != "" {
		f, err := t.ExpiresIn.Float64()
		if err != nil || f < 0 {
			return nil, fmt.Errorf("mcpauth: token exchange: bad expires_in %q", t.ExpiresIn)
		}
		tok.ExpiresIn = int(f)
	}
	return tok, nil
}
