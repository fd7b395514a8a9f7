package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	authRequestTTL  = 10 * time.Minute
	accessTokenTTL  = 5 * time.Minute
	refreshTokenTTL = 24 * time.Hour
	idTokenTTL      = 5 * time.Minute
	groupsClaim     = "groups"
	groupsScope     = "groups"
)

var errNotFound = errors.New("not found")

// user is a stored user.
type user struct {
	User
	id       string // the stable subject
	disabled bool
}

// subjectFor derives a stable, opaque subject from a username, so a
// restarted server gives the same users the same subjects.
func subjectFor(username string) string {
	sum := sha256.Sum256([]byte("testidp user:" + username))
	return hex.EncodeToString(sum[:12])
}

// authRequest is a pending authorization request (op.AuthRequest).
type authRequest struct {
	id            string
	created       time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge

	userID   string
	done     bool
	authTime time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return amr(a.done) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

func amr(done bool) []string {
	if done {
		return []string{"pwd"}
	}
	return nil
}

// accessToken is an issued access token (the bearer token the OP hands
// out encrypts its id and subject).
type accessToken struct {
	id        string
	clientID  string
	subject   string
	scopes    []string
	refreshID string // the refresh token it came with, if any
	expires   time.Time
}

// refreshToken is an issued refresh token; the token itself is its key.
type refreshToken struct {
	token    string
	clientID string
	subject  string
	scopes   []string
	amr      []string
	authTime time.Time
	expires  time.Time
}

// refreshRequest is what a refresh token stands for (op.RefreshTokenRequest).
type refreshRequest struct {
	*refreshToken
	current []string
}

func (r *refreshRequest) GetAMR() []string            { return r.amr }
func (r *refreshRequest) GetAudience() []string       { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.current }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.current = s }

// signingKey is an RSA key (op.SigningKey and op.Key).
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func newSigningKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: randomID(), key: k}, nil
}

func randomID() string { return rand.Text() }

// storage is the in-memory op.Storage.
type storage struct {
	mu            sync.Mutex
	users         map[string]*user   // by username
	clients       map[string]*client // by id
	authRequests  map[string]*authRequest
	codes         map[string]string // code → auth request id
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
	keys          []*signingKey // keys[0] signs; all are published
	now           func() time.Time
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

func (s *storage) userByID(id string) *user {
	for _, u := range s.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

// activeUser returns the user with subject id unless unknown or disabled.
func (s *storage) activeUser(id string) (*user, error) {
	u := s.userByID(id)
	if u == nil {
		return nil, errNotFound
	}
	if u.disabled {
		return nil, errors.New("user disabled")
	}
	return u, nil
}

// checkLogin authenticates a user for a pending auth request and marks it
// done.
func (s *storage) checkLogin(requestID, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.authRequests[requestID]
	if !ok || s.now().After(req.created.Add(authRequestTTL)) {
		return errors.New("the sign-in request has expired; start again")
	}
	u, ok := s.users[username]
	if !ok || u.Password != password {
		return errors.New("wrong username or password")
	}
	if u.disabled {
		return errors.New("this account is disabled")
	}
	req.userID = u.id
	req.done = true
	req.authTime = s.now()
	return nil
}

// disable marks a user disabled and revokes everything issued to them.
func (s *storage) disable(username string, disabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		return false
	}
	u.disabled = disabled
	if disabled {
		for k, t := range s.refreshTokens {
			if t.subject == u.id {
				delete(s.refreshTokens, k)
			}
		}
		for k, t := range s.accessTokens {
			if t.subject == u.id {
				delete(s.accessTokens, k)
			}
		}
	}
	return true
}

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	// OAuth 2.1: PKCE with S256 for every client.
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	req := &authRequest{
		id:            randomID(),
		created:       s.now(),
		clientID:      r.ClientID,
		redirectURI:   r.RedirectURI,
		state:         r.State,
		nonce:         r.Nonce,
		scopes:        slices.Clone(r.Scopes),
		responseType:  r.ResponseType,
		responseMode:  r.ResponseMode,
		codeChallenge: &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod},
		userID:        userID,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gc()
	s.authRequests[req.id] = req
	return req, nil
}

// gc drops expired requests and tokens; s.mu must be held.
func (s *storage) gc() {
	now := s.now()
	for id, r := range s.authRequests {
		if now.After(r.created.Add(authRequestTTL)) {
			delete(s.authRequests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.authRequests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for id, t := range s.accessTokens {
		if now.After(t.expires) {
			delete(s.accessTokens, id)
		}
	}
	for id, t := range s.refreshTokens {
		if now.After(t.expires) {
			delete(s.refreshTokens, id)
		}
	}
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.authRequests[id]
	if !ok || s.now().After(r.created.Add(authRequestTTL)) {
		return nil, errNotFound
	}
	return r, nil
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errNotFound
	}
	r, ok := s.authRequests[id]
	if !ok || s.now().After(r.created.Add(authRequestTTL)) {
		return nil, errNotFound
	}
	if _, err := s.activeUser(r.userID); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[id]; !ok {
		return errNotFound
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest runs once the code is redeemed, so a code works once.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func clientOf(r op.TokenRequest) string {
	switch r := r.(type) {
	case op.AuthRequest:
		return r.GetClientID()
	case op.RefreshTokenRequest:
		return r.GetClientID()
	}
	return ""
}

// newAccessToken records an access token; s.mu must be held.
func (s *storage) newAccessToken(r op.TokenRequest, refreshID string) (*accessToken, error) {
	if _, err := s.activeUser(r.GetSubject()); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("the user cannot sign in").WithParent(err)
	}
	t := &accessToken{id: randomID(), clientID: clientOf(r), subject: r.GetSubject(),
		scopes: slices.Clone(r.GetScopes()), refreshID: refreshID, expires: s.now().Add(accessTokenTTL)}
	s.accessTokens[t.id] = t
	return t, nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.newAccessToken(r, "")
	if err != nil {
		return "", time.Time{}, err
	}
	return t.id, t.expires, nil
}

// CreateAccessAndRefreshTokens issues a refresh token with the access
// token; on refresh it rotates: the current token stops working.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := &refreshToken{token: randomID(), clientID: clientOf(r), subject: r.GetSubject(),
		scopes: slices.Clone(r.GetScopes()), expires: s.now().Add(refreshTokenTTL)}
	switch r := r.(type) {
	case op.AuthRequest:
		rt.amr, rt.authTime = r.GetAMR(), r.GetAuthTime()
	case op.RefreshTokenRequest:
		rt.amr, rt.authTime = r.GetAMR(), r.GetAuthTime()
	}
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok || old.subject != rt.subject || old.clientID != rt.clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is no longer valid")
		}
		rt.scopes = slices.Clone(old.scopes) // a narrowed refresh keeps the grant's scopes
		delete(s.refreshTokens, current)
		for id, t := range s.accessTokens {
			if t.refreshID == current {
				delete(s.accessTokens, id)
			}
		}
	}
	t, err := s.newAccessToken(r, rt.token)
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.refreshTokens[rt.token] = rt
	return t.id, rt.token, t.expires, nil
}

// TokenRequestByRefreshToken refuses (invalid_grant) an unknown, expired
// or rotated token, and any token of a disabled user.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || s.now().After(rt.expires) {
		return nil, errors.New("invalid refresh token")
	}
	if _, err := s.activeUser(rt.subject); err != nil {
		return nil, err
	}
	return &refreshRequest{refreshToken: rt, current: slices.Clone(rt.scopes)}, nil
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.refreshTokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.refreshTokens, k)
		}
	}
	for k, t := range s.accessTokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.accessTokens, k)
		}
	}
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.accessTokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	if t, ok := s.refreshTokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
		for id, at := range s.accessTokens {
			if at.refreshID == tokenOrID {
				delete(s.accessTokens, id)
			}
		}
	}
	return nil // RFC 7009: an unknown token is not an error
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refreshTokens[token]
	if !ok || t.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.subject, t.token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0], nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, publicKey{k})
	}
	return out, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errNotFound
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || c.Secret != secret {
		return errors.New("invalid client credentials")
	}
	return nil
}

// setUserinfo fills claims for scopes: email, profile (name,
// preferred_username) and always groups.
func (s *storage) setUserinfo(info *oidc.UserInfo, userID string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.activeUser(userID)
	if err != nil {
		return err
	}
	info.Subject = u.id
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.Email != "")
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Username
		}
	}
	groups := slices.Clone(u.Groups)
	if groups == nil {
		groups = []string{}
	}
	info.AppendClaims(groupsClaim, groups)
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does
// the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, r.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	valid := ok && t.subject == subject && !s.now().After(t.expires)
	s.mu.Unlock()
	if !valid {
		return errors.New("access token is not valid")
	}
	return s.setUserinfo(info, subject, t.scopes)
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	valid := ok && t.subject == subject && !s.now().After(t.expires)
	s.mu.Unlock()
	if !valid {
		return errors.New("access token is not valid")
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(info, subject, t.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Active = true
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Audience = []string{t.clientID}
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile client authentication is not supported")
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }
