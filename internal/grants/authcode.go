package grants

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// authorizationCode redeems a code (OAuth 2.1 §4.1.3): single use, bound
// to the client, the redirect URI, the PKCE challenge and the resource.
func (h *Handler) authorizationCode(r *http.Request, client store.Client) (*tokenResponse, *oauth.Error) {
	if len(client.GrantTypes) > 0 && !allowsGrant(client, "authorization_code") {
		return nil, oauth.Errorf(oauth.UnauthorizedClient, "this client may not use the authorization code grant")
	}
	code := r.PostFormValue("code")
	verifier := r.PostFormValue("code_verifier")
	if code == "" || verifier == "" {
		return nil, oauth.Errorf(oauth.InvalidRequest, "code and code_verifier are required")
	}
	now := h.o.Now()
	ac, err := h.o.Store.ConsumeAuthCode(r.Context(), tokens.HashSecret(code), now)
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		// A replayed code: revoke everything it issued (OAuth 2.1 §4.1.3,
		// RFC 6749 §4.1.2): the refresh tokens, and the access tokens,
		// which carry the grant id.
		if rerr := h.o.Store.RevokeRefreshFamily(r.Context(), ac.GrantID, now); rerr != nil {
			h.log.Error("revoke after code replay", "err", rerr)
		}
		if rerr := h.o.Access.RevokeGrant(r.Context(), ac.GrantID); rerr != nil {
			h.log.Error("revoke access tokens after code replay", "err", rerr)
		}
		h.log.Warn("authorization code replayed; grant revoked", "client", client.ID, "user", ac.UserID)
		return nil, oauth.Errorf(oauth.InvalidGrant, "the authorization code was already used")
	case errors.Is(err, store.ErrExpired):
		return nil, oauth.Errorf(oauth.InvalidGrant, "the authorization code expired")
	case err != nil:
		return nil, oauth.Errorf(oauth.InvalidGrant, "unknown authorization code")
	}
	switch {
	case ac.ClientID != client.ID:
		return nil, oauth.Errorf(oauth.InvalidGrant, "the code was issued to another client")
	case r.PostFormValue("redirect_uri") != "" && r.PostFormValue("redirect_uri") != ac.RedirectURI:
		return nil, oauth.Errorf(oauth.InvalidGrant, "redirect_uri differs from the authorization request")
	case !tokens.VerifyPKCE(verifier, ac.CodeChallenge):
		return nil, oauth.Errorf(oauth.InvalidGrant, "code_verifier does not match the code_challenge")
	}
	res, oerr := h.resourceFor(r, ac.Resource)
	if oerr != nil {
		return nil, oerr
	}
	user, err := h.o.Store.GetUser(r.Context(), ac.UserID)
	if err != nil || user.Disabled || h.o.Access.Check(r.Context(), access.Subject{UserID: user.ID, ClientID: client.ID, GrantID: ac.GrantID, IssuedAt: ac.CreatedAt}) != nil {
		return nil, oauth.Errorf(oauth.InvalidGrant, "the user can no longer sign in")
	}
	consented := oauth.ParseScope(ac.Scope)
	scopes := res.LimitToClient(client, consented)
	if len(consented) > 0 && len(scopes) == 0 {
		return nil, oauth.Errorf(oauth.InvalidScope, "none of the authorized scopes is within the client's registered scope")
	}
	at, oerr := h.mint(client, res, scopes, &user, ac.GrantID)
	if oerr != nil {
		return nil, oerr
	}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(h.o.AccessTTL.Seconds()), Scope: strings.Join(scopes, " ")}
	if allowsGrant(client, "refresh_token") {
		secret, hash := tokens.NewSecret("mgr_")
		if err := h.o.Store.CreateRefreshToken(r.Context(), store.RefreshToken{
			TokenHash: hash, FamilyID: ac.GrantID, ClientID: client.ID, UserID: user.ID, Resource: res.URI,
			Scope: strings.Join(scopes, " "), CreatedAt: now, ExpiresAt: now.Add(h.o.RefreshTTL),
		}); err != nil {
			return nil, &oauth.Error{Code: oauth.ServerError, Description: "could not issue a refresh token", Status: 500, Cause: err}
		}
		resp.RefreshToken = secret
	}
	h.touch(r.Context(), client)
	h.log.Info("tokens issued", "grant", "authorization_code", "client", client.ID, "user", user.ID, "resource", res.URI, "scope", resp.Scope)
	return resp, nil
}
