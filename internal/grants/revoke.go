package grants

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// revoke implements RFC 7009: the client revokes its own refresh token
// (and with it the whole grant) or access token. Unknown tokens get 200
// too (§2.2), so the endpoint tells nothing about what exists.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauth.Errorf(oauth.InvalidRequest, "the request body must be form-encoded")
	}
	if oerr := oauth.SingleValued(r.PostForm); oerr != nil {
		return oerr
	}
	client, oerr := h.authenticateClient(r)
	if oerr != nil {
		return oerr
	}
	token := r.PostFormValue("token")
	if token == "" {
		return oauth.Errorf(oauth.InvalidRequest, "token is required")
	}
	now := h.o.Now()
	// The token's shape says what it is; token_type_hint is ignored. It is
	// only a hint, and a lookup that trusted it missed an access token sent
	// as refresh_token, answering 200 without revoking (RFC 7009 §2.1: a
	// server must search the other types too).
	if strings.HasPrefix(token, "mgr_") {
		if rt, err := h.o.Store.GetRefreshToken(r.Context(), tokens.HashSecret(token)); err == nil && rt.ClientID == client.ID {
			if err := h.o.Store.RevokeRefreshFamily(r.Context(), rt.FamilyID, now); err != nil {
				return &oauth.Error{Code: oauth.ServerError, Description: "could not revoke", Status: 500, Cause: err}
			}
			// RFC 7009 §2.1: revoking a refresh token also invalidates the
			// access tokens of the same grant.
			if err := h.o.Access.RevokeGrant(r.Context(), rt.FamilyID); err != nil {
				return &oauth.Error{Code: oauth.ServerError, Description: "could not revoke", Status: 500, Cause: err}
			}
			h.log.Info("grant revoked", "client", client.ID, "user", rt.UserID)
		}
	} else if c := h.verifyAny(token); c != nil && c.ClientID == client.ID {
		if err := h.revokeAccessToken(r, c); err != nil {
			return &oauth.Error{Code: oauth.ServerError, Description: "could not revoke", Status: 500, Cause: err}
		}
		h.log.Info("access token revoked", "client", client.ID, "sub", c.Subject)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// revokeAccessToken refuses the token everywhere and, when it came from
// an authorization (it names its grant), the whole grant: its refresh
// tokens and the other access tokens it issued (RFC 7009 §2.1 lets the
// server revoke the respective refresh token; a client revoking at
// sign-out means the grant).
func (h *Handler) revokeAccessToken(r *http.Request, c *tokens.Claims) error {
	if err := h.o.Access.RevokeToken(r.Context(), c.ID, c.ExpiresAt); err != nil {
		return err
	}
	if c.GrantID == "" {
		return nil
	}
	if err := h.o.Store.RevokeRefreshFamily(r.Context(), c.GrantID, h.o.Now()); err != nil {
		return err
	}
	return h.o.Access.RevokeGrant(r.Context(), c.GrantID)
}

// verifyAny verifies an access token for whichever of our resources it
// names; nil when it is not a valid token of ours.
func (h *Handler) verifyAny(token string) *tokens.Claims {
	if h.o.Verify == nil {
		return nil
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var peek struct {
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(raw, &peek) != nil {
		return nil
	}
	var auds []string
	var one string
	if json.Unmarshal(peek.Aud, &one) == nil {
		auds = []string{one}
	} else {
		_ = json.Unmarshal(peek.Aud, &auds)
	}
	for _, a := range auds {
		if _, ok := h.o.Resources[a]; ok {
			if c, err := h.o.Verify(token, a); err == nil {
				return c
			}
		}
	}
	return nil
}

// introspect implements RFC 7662 for resource servers that prefer asking
// to verifying JWTs. The caller authenticates as a confidential client.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauth.Errorf(oauth.InvalidRequest, "the request body must be form-encoded")
	}
	if oerr := oauth.SingleValued(r.PostForm); oerr != nil {
		return oerr
	}
	client, oerr := h.authenticateClient(r)
	if oerr != nil {
		return oerr
	}
	if client.TokenEndpointAuthMethod == "none" {
		return &oauth.Error{Code: oauth.InvalidClient, Description: "introspection needs a confidential client", Status: http.StatusUnauthorized}
	}
	if !oauth.OperatorRegistered(client) {
		// RFC 7662 §4: the server decides who may introspect. A client
		// that registered itself could otherwise read any token it found.
		return &oauth.Error{Code: oauth.UnauthorizedClient, Description: "introspection is for resource servers registered by the operator", Status: http.StatusForbidden}
	}
	inactive := map[string]any{"active": false}
	token := r.PostFormValue("token")
	now := h.o.Now()
	if strings.HasPrefix(token, "mgr_") {
		rt, err := h.o.Store.GetRefreshToken(r.Context(), tokens.HashSecret(token))
		if err != nil || !rt.RevokedAt.IsZero() || !rt.RotatedAt.IsZero() || now.After(rt.ExpiresAt) || rt.ClientID != client.ID ||
			h.o.Access.Check(r.Context(), access.Subject{UserID: rt.UserID, ClientID: rt.ClientID, GrantID: rt.FamilyID, IssuedAt: rt.CreatedAt}) != nil {
			oauth.WriteJSON(w, http.StatusOK, inactive)
			return nil
		}
		oauth.WriteJSON(w, http.StatusOK, map[string]any{"active": true, "token_type": "refresh_token", "client_id": rt.ClientID,
			"sub": rt.UserID, "aud": rt.Resource, "scope": rt.Scope, "exp": rt.ExpiresAt.Unix(), "iat": rt.CreatedAt.Unix(), "iss": h.o.Issuer})
		return nil
	}
	c := h.verifyAny(token)
	// Cut off anywhere (revoked, its grant revoked, user disabled or
	// removed): inactive (RFC 7662 §2.2).
	if c == nil || h.o.Access.Check(r.Context(), access.FromClaims(c)) != nil || !h.mayIntrospect(client.ID, c) {
		oauth.WriteJSON(w, http.StatusOK, inactive)
		return nil
	}
	out := map[string]any{"active": true, "token_type": "Bearer", "client_id": c.ClientID, "sub": c.Subject, "aud": c.Audience,
		"scope": c.Scope, "exp": c.ExpiresAt.Unix(), "iat": c.IssuedAt.Unix(), "iss": c.Issuer, "jti": c.ID}
	if c.Tenant != "" {
		out["tenant"] = c.Tenant
	}
	if len(c.Roles) > 0 {
		out["roles"] = c.Roles
	}
	oauth.WriteJSON(w, http.StatusOK, out)
	return nil
}

// mayIntrospect reports whether client may learn about access token c
// (RFC 7662 §4 lets the server limit who learns what): a token issued to
// the client itself, or one for an audience the client is entitled to —
// those its configuration lists for introspection ("*": any), and those it
// accepts as subject tokens for token exchange (it is that server). For
// any other token the answer is {"active": false}, as for an unknown one,
// so the endpoint reveals nothing about it (RFC 7662 §2.2).
func (h *Handler) mayIntrospect(clientID string, c *tokens.Claims) bool {
	if c.ClientID == clientID {
		return true
	}
	entitled := append(slices.Clone(h.o.Introspection[clientID]), h.o.Exchanges[clientID].SubjectAudiences...)
	return slices.Contains(entitled, "*") || slices.Contains(entitled, c.Audience)
}
