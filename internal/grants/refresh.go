package grants

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// refresh rotates a refresh token (OAuth 2.1 §4.3.1): each use yields a
// new one; presenting a rotated one again revokes the whole family.
func (h *Handler) refresh(r *http.Request, client store.Client) (*tokenResponse, *oauth.Error) {
	if !allowsGrant(client, "refresh_token") {
		return nil, oauth.Errorf(oauth.UnauthorizedClient, "this client may not use refresh tokens")
	}
	old := r.PostFormValue("refresh_token")
	if old == "" {
		return nil, oauth.Errorf(oauth.InvalidRequest, "refresh_token is required")
	}
	ctx := r.Context()
	now := h.o.Now()
	cur, err := h.o.Store.GetRefreshToken(ctx, tokens.HashSecret(old))
	if err != nil {
		return nil, oauth.Errorf(oauth.InvalidGrant, "unknown refresh token")
	}
	if cur.ClientID != client.ID {
		return nil, oauth.Errorf(oauth.InvalidGrant, "the refresh token was issued to another client")
	}
	res, oerr := h.resourceFor(r, cur.Resource)
	if oerr != nil {
		return nil, oerr
	}
	// The user must still be allowed in: a disabled user loses access at
	// the next refresh at the latest.
	user, err := h.o.Store.GetUser(ctx, cur.UserID)
	if err != nil || user.Disabled || h.o.Access.Check(ctx, access.Subject{UserID: cur.UserID, ClientID: client.ID, GrantID: cur.FamilyID, IssuedAt: cur.CreatedAt}) != nil {
		_ = h.o.Store.RevokeRefreshFamily(ctx, cur.FamilyID, now)
		return nil, oauth.Errorf(oauth.InvalidGrant, "the user can no longer sign in")
	}
	if h.o.RefreshUser != nil {
		fresh, err := h.o.RefreshUser(ctx, user)
		switch {
		case errors.Is(err, ErrUserRefused):
			_ = h.o.Store.RevokeRefreshFamily(ctx, cur.FamilyID, now)
			h.log.Warn("refresh refused for the user; grant revoked", "user", user.ID, "client", client.ID, "reason", err)
			return nil, oauth.Errorf(oauth.InvalidGrant, "your organisation no longer accepts this sign-in; sign in again")
		case err != nil:
			// The provider could not be asked: fail closed, but let the
			// client retry later rather than lose the grant.
			return nil, &oauth.Error{Code: oauth.ServerError, Description: "the identity provider cannot be reached; try again later", Status: http.StatusServiceUnavailable, Cause: err}
		}
		user = fresh
	}
	// Policies are evaluated again with the user as they are now: a lost
	// permission means a narrower token at the next refresh at the latest.
	// The client's registered scope bounds it too (a metadata document
	// may have narrowed it since).
	scopes := res.LimitToClient(client, intersect(oauth.ParseScope(cur.Scope), h.o.Granter.Grant(&user, client, res, oauth.ParseScope(cur.Scope))))
	if len(scopes) == 0 && len(res.Scopes) > 0 {
		_ = h.o.Store.RevokeRefreshFamily(ctx, cur.FamilyID, now)
		return nil, oauth.Errorf(oauth.InvalidGrant, "policy no longer grants any scope; sign in again")
	}
	if asked := oauth.WithoutOfflineAccess(oauth.ParseScope(r.PostFormValue("scope"))); len(asked) > 0 {
		// A refresh may narrow the scope, never widen it (RFC 6749 §6).
		for _, s := range asked {
			if !slices.Contains(oauth.ParseScope(cur.Scope), s) {
				return nil, oauth.Errorf(oauth.InvalidScope, "scope %q was not granted", s)
			}
		}
		scopes = intersect(asked, scopes)
	}
	secret, hash := tokens.NewSecret("mgr_")
	next := store.RefreshToken{TokenHash: hash, FamilyID: cur.FamilyID, ClientID: client.ID, UserID: cur.UserID,
		Resource: cur.Resource, Scope: cur.Scope, CreatedAt: now, ExpiresAt: now.Add(h.o.RefreshTTL)}
	if _, err := h.o.Store.RotateRefreshToken(ctx, cur.TokenHash, next, now); err != nil {
		switch {
		case errors.Is(err, store.ErrAlreadyUsed):
			// Reuse: the store revoked the family; the access tokens it
			// issued go too (OAuth 2.1 §4.3.1).
			if rerr := h.o.Access.RevokeGrant(ctx, cur.FamilyID); rerr != nil {
				h.log.Error("revoke access tokens after refresh reuse", "err", rerr)
			}
			h.log.Warn("refresh token reused; family revoked", "client", client.ID, "user", cur.UserID)
			return nil, oauth.Errorf(oauth.InvalidGrant, "the refresh token was already used; sign in again")
		case errors.Is(err, store.ErrRevoked):
			return nil, oauth.Errorf(oauth.InvalidGrant, "the refresh token was revoked")
		case errors.Is(err, store.ErrExpired):
			return nil, oauth.Errorf(oauth.InvalidGrant, "the refresh token expired")
		}
		return nil, &oauth.Error{Code: oauth.ServerError, Description: "could not rotate the refresh token", Status: 500, Cause: err}
	}
	at, oerr := h.mint(client, res, scopes, &user, cur.FamilyID)
	if oerr != nil {
		return nil, oerr
	}
	h.touch(ctx, client)
	h.log.Info("tokens issued", "grant", "refresh_token", "client", client.ID, "user", user.ID, "resource", res.URI)
	return &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(h.o.AccessTTL.Seconds()),
		RefreshToken: secret, Scope: strings.Join(scopes, " ")}, nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
