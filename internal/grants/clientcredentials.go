package grants

import (
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

// clientCredentials issues a token to a machine agent acting as itself
// (RFC 6749 §4.4); only confidential clients may use it.
func (h *Handler) clientCredentials(r *http.Request, client store.Client) (*tokenResponse, *oauth.Error) {
	if !oauth.OperatorRegistered(client) {
		// Tokens without a person are for clients an operator registered;
		// a self-registered or metadata-document client gets none, whatever
		// its metadata declares (issue 8, finding 2).
		return nil, oauth.Errorf(oauth.UnauthorizedClient, "client_credentials is only for clients registered by the operator")
	}
	if client.TokenEndpointAuthMethod == "none" {
		return nil, oauth.Errorf(oauth.UnauthorizedClient, "public clients may not use client_credentials")
	}
	if !allowsGrant(client, "client_credentials") {
		return nil, oauth.Errorf(oauth.UnauthorizedClient, "this client may not use client_credentials")
	}
	res, oerr := h.resourceFor(r, "")
	if oerr != nil {
		return nil, oerr
	}
	requested := oauth.ParseScope(r.PostFormValue("scope"))
	if allowed := oauth.ParseScope(client.Scope); len(allowed) > 0 {
		if len(requested) == 0 {
			requested = allowed
		}
		for _, s := range requested {
			if !contains(allowed, s) {
				return nil, oauth.Errorf(oauth.InvalidScope, "scope %q is not allowed for this client", s)
			}
		}
	}
	scopes := oauth.LimitToClient(client, h.o.Granter.Grant(nil, client, res, requested))
	if len(scopes) == 0 && len(res.Scopes) > 0 {
		return nil, oauth.Errorf(oauth.InvalidScope, "policy grants this client none of the requested scopes on %s", res.ServerName)
	}
	access, oerr := h.mint(client, res, scopes, nil, "")
	if oerr != nil {
		return nil, oerr
	}
	h.log.Info("tokens issued", "grant", "client_credentials", "client", client.ID, "resource", res.URI, "scope", strings.Join(scopes, " "))
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(h.o.AccessTTL.Seconds()), Scope: strings.Join(scopes, " ")}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
